package erp.interop

import org.apache.kafka.clients.consumer.ConsumerRecord
import org.springframework.beans.factory.annotation.Value
import org.springframework.boot.ApplicationArguments
import org.springframework.boot.ApplicationRunner
import org.springframework.boot.SpringApplication
import org.springframework.context.ConfigurableApplicationContext
import org.springframework.kafka.annotation.KafkaListener
import org.springframework.kafka.core.KafkaTemplate
import org.springframework.stereotype.Component
import tools.jackson.databind.JsonNode
import tools.jackson.databind.ObjectMapper
import java.time.Instant
import java.util.UUID
import kotlin.system.exitProcess

/**
 * A Kotlin stock-counting service on either side of a rolling upgrade (the schema-evolution
 * tests): built for `peer.stock-version` of STOCK_COUNTED, it reads the evolution topics with
 * Jackson into that version's class (unknown properties ignored, Boot's default), and publishes
 * the envelopes stdin asks for.
 */
@Component
class StockCountingConsumer(
    private val objectMapper: ObjectMapper,
    private val report: Report,
    @Value("\${peer.products}") private val products: String,
    @Value("\${peer.stock-version}") private val version: Int,
) {
    @KafkaListener(
        id = "stock-counting",
        topics = ["erp.evolution.backward", "erp.evolution.forward", "erp.evolution.full"],
        groupId = "\${peer.group}",
        containerFactory = "kafkaListenerContainerFactory",
        autoStartup = "\${peer.consume-stock}",
    )
    fun onCount(record: ConsumerRecord<String, String>) {
        val envelope = objectMapper.readTree(record.value())
        if (!record.key().startsWith(products)) return
        val type = when {
            version == 1 -> StockCountedV1::class.java
            record.topic().endsWith(".forward") -> StockCountedWithSite::class.java
            else -> StockCountedWithCounter::class.java
        }
        // Throws (and so is retried, then dead-lettered) when a property it requires is missing.
        objectMapper.treeToValue(envelope.get("payload"), type)
        report.line(
            mapOf(
                "kind" to "counted",
                "topic" to record.topic(),
                "key" to record.key(),
                "version" to envelope.get("version").asInt(),
            ),
        )
    }
}

/** Publishes one STOCK_COUNTED envelope per stdin line (`{"topic", "version", "payload"}`). */
@Component
class StockCountingProducer(
    private val kafkaTemplate: KafkaTemplate<String, String>,
    private val objectMapper: ObjectMapper,
    private val report: Report,
    private val context: ConfigurableApplicationContext,
    @Value("\${peer.produce-stock}") private val enabled: Boolean,
) : ApplicationRunner {
    override fun run(args: ApplicationArguments) {
        if (!enabled) return
        val sent = generateSequence(::readLine).filter { it.isNotBlank() }.map { line ->
            val request: JsonNode = objectMapper.readTree(line)
            val payload = request.get("payload")
            val envelope = mapOf(
                "eventId" to UUID.randomUUID().toString(),
                "eventType" to "STOCK_COUNTED",
                "source" to "stock-counter",
                "timestamp" to Instant.now().toString(),
                "traceId" to null,
                "userId" to null,
                "version" to request.get("version").asInt(),
                "payload" to payload,
            )
            val key = payload.get("sku").asString()
            kafkaTemplate.send(request.get("topic").asString(), key, objectMapper.writeValueAsString(envelope))
        }.toList()
        for (future in sent) {
            val result = future.get()
            report.line(mapOf("kind" to "sent", "key" to result.producerRecord.key()))
        }
        exitProcess(SpringApplication.exit(context))
    }
}
