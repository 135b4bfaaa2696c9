-- The outbox table outbox-relay expects by default: the columns of Debezium's outbox event router
-- docs, plus an event time and W3C trace context. Applications INSERT into it in the same
-- transaction as their business change (and may DELETE the row again in that transaction).
CREATE TABLE IF NOT EXISTS outbox_event (
    id                 uuid         PRIMARY KEY DEFAULT gen_random_uuid(), -- becomes the AMQP message-id
    aggregatetype      varchar(255) NOT NULL,                             -- the topic: outbox.event.<aggregatetype>
    aggregateid        varchar(255) NOT NULL,                             -- the record key; order holds per aggregate
    type               varchar(255) NOT NULL,                             -- becomes the AMQP type
    payload            jsonb,                                             -- the message body
    created_at         timestamptz  NOT NULL DEFAULT now(),
    tracingspancontext varchar(256)                                       -- optional W3C traceparent
);
