package erp.interop

import org.apache.kafka.clients.producer.RecordMetadata
import org.slf4j.MDC
import org.springframework.beans.factory.annotation.Value
import org.springframework.kafka.core.KafkaTemplate
import org.springframework.stereotype.Service
import tools.jackson.databind.ObjectMapper
import java.time.Instant
import java.util.UUID
import java.util.concurrent.CompletableFuture

/** The seed's producer template: KafkaTemplate<String, String> + ObjectMapper, key = productId. */
@Service
class InventoryEventProducer(
    private val kafkaTemplate: KafkaTemplate<String, String>,
    private val objectMapper: ObjectMapper,
    @Value("\${peer.topic}") private val topic: String,
) {
    /** Publishes one movement; [timestamp] and [userId] stand in for the clock and the security context. */
    fun publishMovement(
        event: InventoryMovementEvent,
        timestamp: Instant = Instant.now(),
        userId: String? = null,
        version: Int = 1,
    ): CompletableFuture<Sent> {
        val envelope = EventEnvelope(
            eventId = UUID.randomUUID().toString(),
            eventType = event.action.name,
            source = "inventory-service",
            timestamp = timestamp,
            traceId = MDC.get("traceId"),
            userId = userId,
            version = version,
            payload = event,
        )
        return kafkaTemplate.send(topic, event.productId, objectMapper.writeValueAsString(envelope))
            .thenApply { Sent(envelope.eventId, event.productId, it.recordMetadata) }
    }

    /** What the broker acknowledged. */
    data class Sent(val eventId: String, val key: String, val metadata: RecordMetadata)
}
