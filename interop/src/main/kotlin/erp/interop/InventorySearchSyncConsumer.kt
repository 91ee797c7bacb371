package erp.interop

import org.apache.kafka.clients.consumer.ConsumerRecord
import org.springframework.beans.factory.annotation.Value
import org.springframework.kafka.annotation.KafkaListener
import org.springframework.stereotype.Component
import tools.jackson.databind.ObjectMapper
import tools.jackson.module.kotlin.readValue

/**
 * The seed's search-sync consumer: reads each envelope with Jackson into the seed's types and
 * reports it; a product whose id ends in `-fail` makes the search index reject it, so the
 * container's error handler retries and then dead-letters it. On a shared broker only products
 * starting with `peer.products` are the test's: the others are read and skipped.
 */
@Component
class InventorySearchSyncConsumer(
    private val objectMapper: ObjectMapper,
    private val report: Report,
    @Value("\${peer.products}") private val products: String,
) {
    @KafkaListener(
        id = "search-sync",
        topics = ["\${peer.topic}"],
        groupId = "\${peer.group}",
        containerFactory = "kafkaListenerContainerFactory",
        autoStartup = "\${peer.consume}",
    )
    fun onMovement(record: ConsumerRecord<String, String>) {
        val envelope = objectMapper.readValue<EventEnvelope<InventoryMovementEvent>>(record.value())
        if (!envelope.payload.productId.startsWith(products)) return
        if (envelope.payload.productId.endsWith("-fail")) {
            report.line(mapOf("kind" to "failed", "eventId" to envelope.eventId, "offset" to record.offset()))
            throw IllegalStateException("search index rejected ${envelope.payload.productId}")
        }
        report.line(
            mapOf(
                "kind" to "received",
                "key" to record.key(),
                "partition" to record.partition(),
                "offset" to record.offset(),
                "headers" to record.headers().associate { it.key() to String(it.value()) },
                "envelope" to envelope,
            ),
        )
    }
}
