package erp.interop

import org.apache.kafka.clients.consumer.ConsumerRecord
import org.springframework.beans.factory.annotation.Value
import org.springframework.kafka.annotation.KafkaListener
import org.springframework.kafka.support.KafkaHeaders
import org.springframework.messaging.handler.annotation.Header
import org.springframework.stereotype.Component

/**
 * Reads a dead-letter topic with Spring's own header accessors and reports what they give, for
 * the records whose key starts with `peer.products`.
 */
@Component
class DeadLetterReader(
    private val report: Report,
    @Value("\${peer.products}") private val products: String,
) {
    @KafkaListener(
        id = "dlt-reader",
        topics = ["\${peer.dlt-topic}"],
        groupId = "\${peer.group}",
        containerFactory = "deadLetterContainerFactory",
        autoStartup = "\${peer.read-dlt}",
    )
    fun onDeadLetter(
        record: ConsumerRecord<String, String>,
        @Header(KafkaHeaders.DLT_ORIGINAL_TOPIC) originalTopic: String,
        @Header(KafkaHeaders.DLT_ORIGINAL_PARTITION) originalPartition: Int,
        @Header(KafkaHeaders.DLT_ORIGINAL_OFFSET) originalOffset: Long,
        @Header(KafkaHeaders.DLT_ORIGINAL_TIMESTAMP) originalTimestamp: Long,
        @Header(KafkaHeaders.DLT_ORIGINAL_TIMESTAMP_TYPE) originalTimestampType: String,
        @Header(KafkaHeaders.DLT_ORIGINAL_CONSUMER_GROUP) originalGroup: String,
        @Header(KafkaHeaders.DLT_EXCEPTION_FQCN) exceptionFqcn: String,
        @Header(KafkaHeaders.DLT_EXCEPTION_MESSAGE) exceptionMessage: String,
    ) {
        if (!record.key().orEmpty().startsWith(products)) return
        report.line(
            mapOf(
                "kind" to "dead-letter",
                "topic" to record.topic(),
                "key" to record.key(),
                "value" to record.value(),
                "partition" to record.partition(),
                "originalTopic" to originalTopic,
                "originalPartition" to originalPartition,
                "originalOffset" to originalOffset,
                "originalTimestamp" to originalTimestamp,
                "originalTimestampType" to originalTimestampType,
                "originalConsumerGroup" to originalGroup,
                "exceptionFqcn" to exceptionFqcn,
                "exceptionMessage" to exceptionMessage,
            ),
        )
    }
}
