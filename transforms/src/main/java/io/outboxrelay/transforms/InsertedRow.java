package io.outboxrelay.transforms;

import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;

import io.debezium.data.Envelope;

/**
 * The outbox row in a record, when the record is one that Debezium's router turns into an event: a
 * change event (a {@code Struct} under a named envelope schema) for an insert or a snapshot read.
 *
 * <p>The schema is checked the way Debezium's router checks it before reading anything, name first:
 * a record with no value schema, or an unnamed one (what an earlier transform in a chain, a heartbeat or
 * a custom source can hand on), is no change event, and Debezium's router passes it through untouched.
 */
final class InsertedRow {

    private InsertedRow() {
    }

    /** The 'after' row of an insert or snapshot read, or null for any other record. */
    static Struct of(ConnectRecord<?> record) {
        Schema schema = record.valueSchema();
        if (!(record.value() instanceof Struct value) || schema == null || schema.name() == null || !Envelope.isEnvelopeSchema(schema)) {
            return null;
        }
        if (value.schema().field(Envelope.FieldName.OPERATION) == null || value.schema().field(Envelope.FieldName.AFTER) == null) {
            return null;
        }
        String code = value.getString(Envelope.FieldName.OPERATION);
        boolean insert = Envelope.Operation.CREATE.code().equals(code) || Envelope.Operation.READ.code().equals(code);
        return insert ? value.getStruct(Envelope.FieldName.AFTER) : null;
    }

    /** A column's value in {@code row}, or null when the column is unset or the table has no such column. */
    static Object column(Struct row, String name) {
        if (name == null || row.schema().field(name) == null) {
            return null;
        }
        return row.get(name);
    }
}
