package erp.interop

import java.time.Instant

/** The seed's standard envelope, as the Kotlin services declare it. */
data class EventEnvelope<T>(
    val eventId: String,
    val eventType: String,
    val source: String,
    val timestamp: Instant,
    val traceId: String?,
    val userId: String?,
    val version: Int = 1,
    val payload: T,
)

/** What happened to the stock; its name is the envelope's eventType. */
enum class MovementAction { RECEIVED, SHIPPED, TRANSFERRED }

/** The payload of erp.inventory.movements. */
data class InventoryMovementEvent(
    val productId: String,
    val warehouse: String,
    val action: MovementAction,
    val quantity: Long,
    val toWarehouse: String?,
)

/** A stock count as a service built for version 1 of STOCK_COUNTED declares it. */
data class StockCountedV1(val sku: String, val counted: Long)

/** Version 2 on the backward and full topics: an optional `counter` added. */
data class StockCountedWithCounter(val sku: String, val counted: Long, val counter: String?)

/** Version 2 on the forward topic: a required `site` added. */
data class StockCountedWithSite(val sku: String, val counted: Long, val site: String)
