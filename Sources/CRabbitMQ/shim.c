#include "CRabbitMQ.h"

amqp_rpc_reply_t intellidocs_amqp_login_plain(amqp_connection_state_t conn, const char *vhost, int channel_max,
                                              int frame_max, int heartbeat, const char *user,
                                              const char *password) {
    return amqp_login(conn, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

amqp_rpc_reply_t intellidocs_amqp_login_plain_with_properties(amqp_connection_state_t conn, const char *vhost,
                                                              int channel_max, int frame_max, int heartbeat,
                                                              const amqp_table_t *properties, const char *user,
                                                              const char *password) {
    return amqp_login_with_properties(conn, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

int intellidocs_amqp_send_channel_close_ok(amqp_connection_state_t conn, amqp_channel_t channel) {
    amqp_channel_close_ok_t close_ok;
    close_ok.dummy = 0;
    return amqp_send_method(conn, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
}

int intellidocs_amqp_send_connection_close_ok(amqp_connection_state_t conn) {
    amqp_connection_close_ok_t close_ok;
    close_ok.dummy = 0;
    return amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &close_ok);
}
