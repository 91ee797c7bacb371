package erp.interop

import org.apache.kafka.clients.consumer.ConsumerRecord
import org.springframework.beans.factory.annotation.Value
import org.springframework.boot.ApplicationArguments
import org.springframework.boot.ApplicationRunner
import org.springframework.kafka.annotation.KafkaListener
import org.springframework.stereotype.Component
import tools.jackson.databind.ObjectMapper
import tools.jackson.module.kotlin.readValue
import java.io.File
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicInteger
import kotlin.system.exitProcess

/**
 * The benchmark's Spring side, measured as erp-events-bench measures every consumer: the seed's
 * listener (Jackson decode into the seed's types, offsets committed per record after handling:
 * `peer.ack-mode=RECORD`) reads a backlog of `peer.bench-events` envelopes, prints `LIVE`, then
 * `peer.bench-live` more; it prints {"throughput", "p50_ms", "p99_ms", "peak_rss_mib"} and exits.
 */
@Component
class BenchListener(
    private val objectMapper: ObjectMapper,
    @Value("\${peer.bench-events}") private val backlog: Int,
    @Value("\${peer.bench-live}") private val live: Int,
) : ApplicationRunner {
    private val handled = AtomicInteger()
    private val latencies = DoubleArray(live)
    private val backlogDone = CountDownLatch(1)
    private val allDone = CountDownLatch(1)
    @Volatile private var first = 0L
    @Volatile private var backlogAt = 0L

    @KafkaListener(
        id = "bench",
        topics = ["\${peer.topic}"],
        groupId = "spring-bench",
        containerFactory = "kafkaListenerContainerFactory",
        autoStartup = "#{\${peer.bench-events} > 0}",
    )
    fun onMovement(record: ConsumerRecord<String, String>) {
        val envelope = objectMapper.readValue<EventEnvelope<InventoryMovementEvent>>(record.value())
        val now = System.nanoTime()
        if (first == 0L) first = now
        val n = handled.incrementAndGet()
        if (n > backlog) {
            val published = envelope.timestamp.toEpochMilli() + envelope.timestamp.nano % 1_000_000 / 1e6
            latencies[n - backlog - 1] = System.currentTimeMillis() - published
        }
        if (n == backlog) {
            backlogAt = now
            backlogDone.countDown()
        }
        if (n == backlog + live) allDone.countDown()
    }

    override fun run(args: ApplicationArguments) {
        if (backlog == 0) return
        Thread {
            backlogDone.await()
            println("LIVE")
            System.out.flush()
            allDone.await()
            val sorted = latencies.sorted()
            fun percentile(p: Double) =
                if (sorted.isEmpty()) 0.0 else sorted[Math.round(p / 100.0 * (sorted.size - 1)).toInt()]
            val peakRss = File("/proc/self/status").readLines()
                .first { it.startsWith("VmHWM:") }.split(Regex("\\s+"))[1].toDouble() / 1024
            println(
                objectMapper.writeValueAsString(
                    mapOf(
                        "throughput" to backlog / ((backlogAt - first).coerceAtLeast(1) / 1e9),
                        "p50_ms" to percentile(50.0),
                        "p99_ms" to percentile(99.0),
                        "peak_rss_mib" to peakRss,
                    ),
                ),
            )
            System.out.flush()
            exitProcess(0)
        }.start()
    }
}
