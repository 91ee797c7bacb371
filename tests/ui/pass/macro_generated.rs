//! An event and a listener written by `macro_rules!`: `literal` and `ty` fragments reach the
//! attributes wrapped in invisible groups, and are read through them.
macro_rules! stock_counted {
    ($topic:literal, $group:literal, $counter:ident: $counter_type:ty) => {
        #[erp_events::erp_event(topic = $topic, key = sku, event_type = "STOCK_COUNTED", version = 2)]
        pub struct StockCounted {
            pub sku: String,
            pub counted: i64,
            pub $counter: $counter_type,
        }

        #[erp_events::erp_listener(group = $group)]
        async fn on_count(
            event: erp_events::Envelope<StockCounted>,
        ) -> Result<(), erp_events::HandlerError> {
            let _ = (&event.payload.sku, event.payload.counted, &event.payload.$counter);
            Ok(())
        }
    };
}

stock_counted!("erp.evolution.full", "v2-readers", counter: Option<String>);

fn main() {
    let _ = on_count;
    let _ = StockCounted { sku: String::new(), counted: 0, counter: None };
}
