-- pitcrew receive --store postgres://…, migration 1: the callbacks every replica takes, the
-- scripts that answer them, and the notification that wakes every replica when one is taken.
-- Applied once, in a transaction, by the first replica to start (pitcrew_migrations).

CREATE TABLE pitcrew_callbacks (
    seq BIGSERIAL PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL,
    -- The delivery as pitcrew keeps it (JSON text, without its payload): secrets already
    -- shown as ***.
    delivery TEXT NOT NULL,
    -- Its payload as decoded (JSON text), apart: nested as deep as a sender made it, it would
    -- be one level too deep inside the delivery to be read back.
    payload TEXT
);
CREATE INDEX pitcrew_callbacks_received_at ON pitcrew_callbacks (received_at);

CREATE TABLE pitcrew_scripts (
    -- The click or conversion id whose deliveries it answers.
    id TEXT PRIMARY KEY,
    -- The answers, as JSON: [{"status": 503, "body": "", "delay_ms": 0}, …].
    script TEXT NOT NULL,
    -- How many deliveries it answered already, across every replica.
    answered BIGINT NOT NULL DEFAULT 0,
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX pitcrew_scripts_registered_at ON pitcrew_scripts (registered_at);

CREATE FUNCTION pitcrew_callback_taken() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('pitcrew_callbacks', NEW.seq::text);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER pitcrew_callback_taken AFTER INSERT ON pitcrew_callbacks
    FOR EACH ROW EXECUTE FUNCTION pitcrew_callback_taken();
