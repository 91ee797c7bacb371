package erp.interop

import org.springframework.stereotype.Component
import tools.jackson.databind.ObjectMapper

/** What the peer did, as JSON lines on stdout (logs go to stderr); the tests read these. */
@Component
class Report(private val objectMapper: ObjectMapper) {
    /** Prints one JSON line. */
    @Synchronized
    fun line(fields: Map<String, Any?>) {
        println(objectMapper.writeValueAsString(fields))
        System.out.flush()
    }
}
