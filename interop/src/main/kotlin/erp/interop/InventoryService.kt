package erp.interop

import org.springframework.beans.factory.annotation.Value
import org.springframework.boot.ApplicationArguments
import org.springframework.boot.ApplicationRunner
import org.springframework.boot.SpringApplication
import org.springframework.boot.autoconfigure.SpringBootApplication
import org.springframework.boot.runApplication
import org.springframework.context.ConfigurableApplicationContext
import org.springframework.stereotype.Component
import tools.jackson.databind.ObjectMapper
import tools.jackson.module.kotlin.readValue
import java.time.Instant
import kotlin.system.exitProcess

/**
 * The seed's Kotlin inventory-service as a process the tests drive. What it does is chosen by
 * properties (`--peer.consume=true`, ...), see application.properties:
 *  - `peer.produce=true`: publish one envelope per stdin line (a [ProduceRequest] as JSON)
 *    through the seed's producer, print what the broker acknowledged, exit at end of input;
 *  - `peer.consume=true`: the seed's search-sync `@KafkaListener`, until stopped;
 *  - `peer.read-dlt=true`: read `peer.dlt-topic` with Spring's dead-letter header accessors;
 *  - `peer.bench-events=N`: the benchmark side (see BenchListener).
 */
@SpringBootApplication
class InventoryService

/** One line of the producer's input: a payload and what the envelope should carry with it. */
data class ProduceRequest(
    val payload: InventoryMovementEvent,
    val timestamp: Instant? = null,
    val userId: String? = null,
    val version: Int = 1,
)

/** Publishes what stdin asks for, then stops the application. */
@Component
class StdinProducer(
    private val producer: InventoryEventProducer,
    private val objectMapper: ObjectMapper,
    private val report: Report,
    private val context: ConfigurableApplicationContext,
    @Value("\${peer.produce}") private val enabled: Boolean,
) : ApplicationRunner {
    override fun run(args: ApplicationArguments) {
        if (!enabled) return
        val pending = generateSequence(::readLine).filter { it.isNotBlank() }.map { line ->
            val request = objectMapper.readValue<ProduceRequest>(line)
            producer.publishMovement(
                request.payload,
                request.timestamp ?: Instant.now(),
                request.userId,
                request.version,
            )
        }.toList()
        for (sent in pending.map { it.get() }) {
            report.line(
                mapOf(
                    "kind" to "sent",
                    "eventId" to sent.eventId,
                    "key" to sent.key,
                    "partition" to sent.metadata.partition(),
                    "offset" to sent.metadata.offset(),
                ),
            )
        }
        exitProcess(SpringApplication.exit(context))
    }
}

fun main(args: Array<String>) {
    runApplication<InventoryService>(*args)
}
