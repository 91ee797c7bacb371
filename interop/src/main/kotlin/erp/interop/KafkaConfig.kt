package erp.interop

import org.apache.kafka.clients.consumer.Consumer
import org.apache.kafka.common.TopicPartition
import org.springframework.beans.factory.annotation.Value
import org.springframework.context.annotation.Bean
import org.springframework.context.annotation.Configuration
import org.springframework.kafka.config.ConcurrentKafkaListenerContainerFactory
import org.springframework.kafka.core.ConsumerFactory
import org.springframework.kafka.core.KafkaTemplate
import org.springframework.kafka.listener.ConsumerAwareRebalanceListener
import org.springframework.kafka.listener.ContainerProperties.AckMode
import org.springframework.kafka.listener.DeadLetterPublishingRecoverer
import org.springframework.kafka.listener.DefaultErrorHandler
import org.springframework.util.backoff.FixedBackOff

/**
 * The seed's container factory: `DefaultErrorHandler(DeadLetterPublishingRecoverer(template),
 * FixedBackOff(1000, 3))`. The back-off interval and the dead-letter suffix are settings so the
 * tests can run fast and try both of Spring's suffixes (`peer.dlt-suffix=spring-default` keeps
 * the recoverer's own destination resolver).
 */
@Configuration
class KafkaConfig(
    private val report: Report,
    @Value("\${peer.backoff-ms}") private val backoffMs: Long,
    @Value("\${peer.dlt-suffix}") private val dltSuffix: String,
    @Value("\${peer.ack-mode}") private val ackMode: AckMode,
    @Value("\${peer.start-at-end}") private val startAtEnd: Boolean,
) {
    @Bean
    fun kafkaListenerContainerFactory(
        consumerFactory: ConsumerFactory<String, String>,
        kafkaTemplate: KafkaTemplate<String, String>,
    ): ConcurrentKafkaListenerContainerFactory<String, String> {
        val recoverer = if (dltSuffix == "spring-default") {
            DeadLetterPublishingRecoverer(kafkaTemplate)
        } else {
            DeadLetterPublishingRecoverer(kafkaTemplate) { record, _ ->
                TopicPartition(record.topic() + dltSuffix, record.partition())
            }
        }
        val factory = ConcurrentKafkaListenerContainerFactory<String, String>()
        factory.setConsumerFactory(consumerFactory)
        factory.setCommonErrorHandler(DefaultErrorHandler(recoverer, FixedBackOff(backoffMs, 3)))
        factory.containerProperties.ackMode = ackMode
        factory.containerProperties.setConsumerRebalanceListener(announceAssignments(startAtEnd))
        return factory
    }

    /** A plain factory for reading dead letters: nothing there is retried or dead-lettered again. */
    @Bean
    fun deadLetterContainerFactory(
        consumerFactory: ConsumerFactory<String, String>,
    ): ConcurrentKafkaListenerContainerFactory<String, String> {
        val factory = ConcurrentKafkaListenerContainerFactory<String, String>()
        factory.setConsumerFactory(consumerFactory)
        factory.containerProperties.setConsumerRebalanceListener(announceAssignments(false))
        return factory
    }

    /**
     * Reports each assignment, so a test knows when the peer is ready to receive; with
     * [startAtEnd], first moves to the partitions' ends (what is already there, other tests'
     * records on a shared broker, is not this run's).
     */
    private fun announceAssignments(startAtEnd: Boolean) = object : ConsumerAwareRebalanceListener {
        override fun onPartitionsAssigned(consumer: Consumer<*, *>, partitions: Collection<TopicPartition>) {
            if (startAtEnd) {
                consumer.seekToEnd(partitions)
                partitions.forEach { consumer.position(it) }
            }
            report.line(
                mapOf(
                    "kind" to "assigned",
                    "group" to consumer.groupMetadata().groupId(),
                    "partitions" to partitions.map { "${it.topic()}:${it.partition()}" },
                ),
            )
        }
    }
}
