// CRabbitMQ: the only door from Swift into rabbitmq-c 0.11 (librabbitmq).
//
// Swift cannot call C variadic functions (`amqp_login`, `amqp_login_with_properties`) and does not
// import the method-number macros (they are casts: `((amqp_method_number_t)0x00140028)`), so this
// header adds non-variadic wrappers and typed constants with an `intellidocs_` / `INTELLIDOCS_` prefix.
// Only the `Broker` module imports this target.
#ifndef INTELLIDOCS_CRABBITMQ_H
#define INTELLIDOCS_CRABBITMQ_H

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

// MARK: - Method numbers used by the Broker module

static const amqp_method_number_t INTELLIDOCS_AMQP_CONNECTION_CLOSE_METHOD = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_method_number_t INTELLIDOCS_AMQP_CONNECTION_BLOCKED_METHOD = AMQP_CONNECTION_BLOCKED_METHOD;
static const amqp_method_number_t INTELLIDOCS_AMQP_CONNECTION_UNBLOCKED_METHOD = AMQP_CONNECTION_UNBLOCKED_METHOD;
static const amqp_method_number_t INTELLIDOCS_AMQP_CHANNEL_CLOSE_METHOD = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t INTELLIDOCS_AMQP_BASIC_DELIVER_METHOD = AMQP_BASIC_DELIVER_METHOD;
static const amqp_method_number_t INTELLIDOCS_AMQP_BASIC_ACK_METHOD = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t INTELLIDOCS_AMQP_BASIC_NACK_METHOD = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t INTELLIDOCS_AMQP_BASIC_CANCEL_METHOD = AMQP_BASIC_CANCEL_METHOD;
static const amqp_method_number_t INTELLIDOCS_AMQP_BASIC_RETURN_METHOD = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t INTELLIDOCS_AMQP_BASIC_GET_OK_METHOD = AMQP_BASIC_GET_OK_METHOD;
static const amqp_method_number_t INTELLIDOCS_AMQP_BASIC_GET_EMPTY_METHOD = AMQP_BASIC_GET_EMPTY_METHOD;

// MARK: - Non-variadic wrappers

/// `amqp_login` with SASL PLAIN and the library's default client properties.
amqp_rpc_reply_t intellidocs_amqp_login_plain(amqp_connection_state_t conn, const char *vhost, int channel_max,
                                              int frame_max, int heartbeat, const char *user,
                                              const char *password);

/// `amqp_login_with_properties` with SASL PLAIN. `properties` (may be NULL) is merged with the library's
/// defaults (product, version, capabilities such as consumer_cancel_notify); use it for `connection_name`.
amqp_rpc_reply_t intellidocs_amqp_login_plain_with_properties(amqp_connection_state_t conn, const char *vhost,
                                                              int channel_max, int frame_max, int heartbeat,
                                                              const amqp_table_t *properties, const char *user,
                                                              const char *password);

/// Answers a server-initiated channel.close: the channel is unusable until close-ok has been sent.
int intellidocs_amqp_send_channel_close_ok(amqp_connection_state_t conn, amqp_channel_t channel);

/// Answers a server-initiated connection.close before the socket is dropped.
int intellidocs_amqp_send_connection_close_ok(amqp_connection_state_t conn);

#endif
