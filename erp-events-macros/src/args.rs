//! Parsing of `key = value` attribute arguments, shared by every macro.
//!
//! Unknown and repeated keys are reported (all of them) with the list of valid keys; the values
//! are interpreted by each macro.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprLit, Ident, Lit, LitStr};

use crate::errors::Errors;
use crate::names::{backticked, did_you_mean};

/// One argument: `key = value` or `key(nested, ...)`.
pub struct Arg {
    /// The key.
    pub key: Ident,
    /// What follows it.
    pub value: ArgValue,
}

/// The value of an [`Arg`].
pub enum ArgValue {
    /// `key = expr`.
    Expr(Expr),
    /// `key(a = 1, b = 2)`.
    Nested(Vec<Arg>),
}

/// Parses `tokens` as arguments whose keys must be among `valid`; nested lists are checked by
/// their consumer with [`check_keys`].
pub fn parse_args(tokens: TokenStream, valid: &[&str], errors: &mut Errors) -> Vec<Arg> {
    let mut args = Vec::new();
    let parser = syn::meta::parser(|meta| parse_one(meta, &mut args));
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    check_keys(&args, valid, errors);
    args
}

fn parse_one(meta: ParseNestedMeta<'_>, args: &mut Vec<Arg>) -> syn::Result<()> {
    let key = meta.path.require_ident()?.clone();
    let value = if meta.input.peek(syn::Token![=]) {
        ArgValue::Expr(ungrouped(meta.value()?.parse()?))
    } else if meta.input.peek(syn::token::Paren) {
        let mut nested = Vec::new();
        meta.parse_nested_meta(|inner| parse_one(inner, &mut nested))?;
        ArgValue::Nested(nested)
    } else {
        return Err(meta.error(format!("expected `{key} = ...`")));
    };
    args.push(Arg { key, value });
    Ok(())
}

/// `expr` without the invisible groups a `macro_rules!` fragment (`$topic:literal`) wraps it in.
fn ungrouped(expr: Expr) -> Expr {
    match expr {
        Expr::Group(group) => ungrouped(*group.expr),
        expr => expr,
    }
}

/// Reports keys not in `valid` and keys given twice.
pub fn check_keys(args: &[Arg], valid: &[&str], errors: &mut Errors) {
    for (index, arg) in args.iter().enumerate() {
        let key = arg.key.to_string();
        if !valid.contains(&key.as_str()) {
            errors.at(
                arg.key.span(),
                format!(
                    "unknown key `{key}`; valid keys are {}{}",
                    backticked(valid.iter().copied()),
                    did_you_mean(&key, valid.iter().copied())
                ),
            );
        } else if args[..index].iter().any(|earlier| earlier.key == arg.key) {
            errors.at(arg.key.span(), format!("`{key}` is given twice"));
        }
    }
}

/// The first argument named `key`.
pub fn find<'a>(args: &'a [Arg], key: &str) -> Option<&'a Arg> {
    args.iter().find(|arg| arg.key == key)
}

impl Arg {
    fn expr(&self, expected: &str, errors: &mut Errors) -> Option<&Expr> {
        match &self.value {
            ArgValue::Expr(expr) => Some(expr),
            ArgValue::Nested(_) => {
                errors.at(self.key.span(), format!("`{}` takes {expected}", self.key));
                None
            }
        }
    }

    fn wrong(&self, expr: &Expr, expected: &str, errors: &mut Errors) {
        errors.push(syn::Error::new_spanned(
            expr,
            format!("`{}` takes {expected}", self.key),
        ));
    }

    /// The value as a string literal.
    pub fn lit_str(&self, errors: &mut Errors) -> Option<LitStr> {
        const EXPECTED: &str = "a string literal";
        match self.expr(EXPECTED, errors)? {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => Some(lit.clone()),
            other => {
                self.wrong(other, EXPECTED, errors);
                None
            }
        }
    }

    /// The value as a plain identifier (a field name).
    pub fn ident(&self, errors: &mut Errors) -> Option<Ident> {
        const EXPECTED: &str = "a field name";
        match self.expr(EXPECTED, errors)? {
            Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
                path.path.get_ident().cloned()
            }
            other => {
                self.wrong(other, EXPECTED, errors);
                None
            }
        }
    }

    /// The value as an integer literal within `range`.
    pub fn int(&self, range: std::ops::RangeInclusive<u64>, errors: &mut Errors) -> Option<u64> {
        let expected = format!("an integer from {} to {}", range.start(), range.end());
        let expr = self.expr(&expected, errors)?;
        let value = match expr {
            Expr::Lit(ExprLit {
                lit: Lit::Int(lit), ..
            }) => lit.base10_parse::<u64>().ok(),
            _ => None,
        };
        match value {
            Some(value) if range.contains(&value) => Some(value),
            _ => {
                self.wrong(expr, &expected, errors);
                None
            }
        }
    }

    /// The value as a `true`/`false` literal.
    pub fn bool(&self, errors: &mut Errors) -> Option<bool> {
        const EXPECTED: &str = "`true` or `false`";
        match self.expr(EXPECTED, errors)? {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(lit),
                ..
            }) => Some(lit.value),
            other => {
                self.wrong(other, EXPECTED, errors);
                None
            }
        }
    }

    /// The value as a positive number literal (integer or float) no greater than `max`.
    pub fn number(&self, max: f64, errors: &mut Errors) -> Option<f64> {
        let expected = format!("a number from 1 to {max}");
        let expr = self.expr(&expected, errors)?;
        let value = match expr {
            Expr::Lit(ExprLit {
                lit: Lit::Float(lit),
                ..
            }) => lit.base10_parse::<f64>().ok(),
            Expr::Lit(ExprLit {
                lit: Lit::Int(lit), ..
            }) => lit.base10_parse::<f64>().ok(),
            _ => None,
        };
        match value {
            Some(value) if (1.0..=max).contains(&value) => Some(value),
            _ => {
                self.wrong(expr, &expected, errors);
                None
            }
        }
    }

    /// The nested arguments of `key(...)`, checked against `valid`.
    pub fn nested(&self, valid: &[&str], errors: &mut Errors) -> Option<&[Arg]> {
        match &self.value {
            ArgValue::Nested(args) => {
                check_keys(args, valid, errors);
                Some(args)
            }
            ArgValue::Expr(expr) => {
                let expected = format!("a list: `{}({} = ...)`", self.key, valid[0]);
                self.wrong(expr, &expected, errors);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn reports_every_unknown_and_repeated_key() {
        let mut errors = Errors::default();
        let args = parse_args(
            quote!(topc = "x", key = id, key = other, versoin = 2),
            &["topic", "key", "version"],
            &mut errors,
        );
        assert_eq!(args.len(), 4);
        assert_eq!(
            errors.messages(),
            [
                "unknown key `topc`; valid keys are `topic`, `key`, `version`; did you mean `topic`?",
                "`key` is given twice",
                "unknown key `versoin`; valid keys are `topic`, `key`, `version`; did you mean `version`?",
            ]
        );
    }

    #[test]
    fn reads_typed_values_and_nested_lists() {
        let mut errors = Errors::default();
        let args = parse_args(
            quote!(a = "s", b = field, c = 3, d = true, e(f = 2.5)),
            &["a", "b", "c", "d", "e"],
            &mut errors,
        );
        assert_eq!(
            find(&args, "a")
                .unwrap()
                .lit_str(&mut errors)
                .unwrap()
                .value(),
            "s"
        );
        assert_eq!(
            find(&args, "b").unwrap().ident(&mut errors).unwrap(),
            "field"
        );
        assert_eq!(find(&args, "c").unwrap().int(0..=10, &mut errors), Some(3));
        assert_eq!(find(&args, "d").unwrap().bool(&mut errors), Some(true));
        let nested = find(&args, "e")
            .unwrap()
            .nested(&["f"], &mut errors)
            .unwrap();
        assert_eq!(nested[0].number(10.0, &mut errors), Some(2.5));
        assert!(errors.is_empty());
    }

    #[test]
    fn wrong_value_kinds_name_what_was_expected() {
        let mut errors = Errors::default();
        let args = parse_args(
            quote!(a = 1, b = "x", c = 11),
            &["a", "b", "c"],
            &mut errors,
        );
        assert!(find(&args, "a").unwrap().lit_str(&mut errors).is_none());
        assert!(find(&args, "b").unwrap().ident(&mut errors).is_none());
        assert!(find(&args, "c").unwrap().int(0..=10, &mut errors).is_none());
        assert_eq!(
            errors.messages(),
            [
                "`a` takes a string literal",
                "`b` takes a field name",
                "`c` takes an integer from 0 to 10",
            ]
        );
    }

    #[test]
    fn a_malformed_list_is_an_error() {
        let mut errors = Errors::default();
        parse_args(quote!(topic), &["topic"], &mut errors);
        assert_eq!(errors.messages(), ["expected `topic = ...`"]);
    }
}
