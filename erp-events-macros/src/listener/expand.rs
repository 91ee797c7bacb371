//! Code generation for `#[erp_listener]`: a unit struct implementing `Listener`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

use crate::names::consumer_group_type;

use super::model::{Handler, ListenerModel};

/// The struct named like the function, its `call` (the function itself) and its `Listener` impl.
pub fn expand(
    model: &ListenerModel,
    handler: &Handler,
    function: &ItemFn,
    group_message: Option<&str>,
) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let name = &sig.ident;
    let name_text = name.to_string();
    let inputs = &sig.inputs;
    let output = &handler.output;
    let event_type = &handler.event_type;
    let group = model.group.as_ref().map(|g| g.value()).unwrap_or_default();
    let (retries, concurrency, idempotent) = (model.retries, model.concurrency, model.idempotent);
    let (initial_ms, multiplier, max_ms) = model.backoff;
    let timeout = match model.timeout_ms {
        Some(ms) => quote!(::core::option::Option::Some(::std::time::Duration::from_millis(#ms))),
        None => quote!(::core::option::Option::None),
    };
    let (state_type, state_arg) = match &handler.state_type {
        Some(ty) => (
            quote!(#ty),
            quote!(, ::erp_events::__private::State(::core::clone::Clone::clone(state))),
        ),
        None => (quote!(()), quote!()),
    };
    let result = quote_spanned! {output.span()=>
        match #name::call(event #state_arg).await {
            ::std::result::Result::Ok(()) => ::std::result::Result::Ok(()),
            ::std::result::Result::Err(error) => {
                #[allow(unused_imports)]
                use ::erp_events::__private::{FromBoxed as _, FromHandlerError as _, FromStdError as _};
                ::std::result::Result::Err((&&&::erp_events::__private::Failure::new(error)).handler_error())
            }
        }
    };
    // The event implements `ConsumedBy<its topic's groups>`; a local trait carries this
    // listener's own message, so the error names the group and where it does consume.
    let group_check = group_message.map(|message| {
        let span = model.group.as_ref().map_or_else(proc_macro2::Span::call_site, |g| g.span());
        let group_type = consumer_group_type(&group);
        let declared = quote_spanned! {span=> declared::<ListenedEvent>() };
        quote! {
            const _: () = {
                #[diagnostic::on_unimplemented(
                    message = #message,
                    label = "not a consumer group of this event's topic"
                )]
                trait ConsumerGroupOfTheListener {}
                #[diagnostic::do_not_recommend]
                impl<E: ::erp_events::__private::ConsumedBy<#group_type>> ConsumerGroupOfTheListener for E {}
                type ListenedEvent = <#event_type as ::erp_events::__private::Event>::Itself;
                const fn declared<E: ConsumerGroupOfTheListener + ?Sized>() {}
                #declared
            };
        }
    });
    quote! {
        #(#attrs)*
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, Default)]
        #vis struct #name;

        impl #name {
            /// The handler function itself (e.g. to unit-test it without Kafka).
            #vis async fn call(#inputs) -> #output #block
        }

        impl ::erp_events::__private::Listener for #name {
            type Event = #event_type;
            type State = #state_type;
            const GROUP: &'static str = #group;
            const NAME: &'static str = #name_text;

            fn options(&self) -> ::erp_events::__private::ListenerOptions {
                ::erp_events::__private::ListenerOptions {
                    retries: #retries,
                    backoff: ::erp_events::__private::Backoff {
                        initial: ::std::time::Duration::from_millis(#initial_ms),
                        multiplier: #multiplier,
                        max: ::std::time::Duration::from_millis(#max_ms),
                    },
                    concurrency: #concurrency,
                    idempotent: #idempotent,
                    timeout: #timeout,
                }
            }

            #[allow(unused_variables)]
            fn handle(
                &self,
                event: ::erp_events::__private::Envelope<Self::Event>,
                state: &Self::State,
            ) -> impl ::std::future::Future<Output = ::std::result::Result<(), ::erp_events::__private::HandlerError>> + ::std::marker::Send {
                let call = async move { #result };
                call
            }
        }

        #group_check
    }
}
