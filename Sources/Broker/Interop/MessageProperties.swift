import CRabbitMQ

/// The basic-class properties this module reads from incoming messages, copied out of C memory.
struct MessageProperties {
    var headers: AMQPTable = [:]
    var messageID: String?
    var contentType: String?

    init() {}

    init(decoding properties: amqp_basic_properties_t) {
        let flags = properties._flags
        if flags & amqp_flags_t(AMQP_BASIC_HEADERS_FLAG) != 0 {
            headers = properties.headers.decoded
        }
        if flags & amqp_flags_t(AMQP_BASIC_MESSAGE_ID_FLAG) != 0 {
            messageID = properties.message_id.copiedString
        }
        if flags & amqp_flags_t(AMQP_BASIC_CONTENT_TYPE_FLAG) != 0 {
            contentType = properties.content_type.copiedString
        }
    }
}
