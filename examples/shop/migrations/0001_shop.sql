-- The shop's schema. Unqualified names: the same migrations build the base schema and every
-- lane's shadow schema.
CREATE TABLE stock (
    item TEXT PRIMARY KEY,
    quantity BIGINT NOT NULL
);
INSERT INTO stock (item, quantity) VALUES ('book', 1000000), ('pen', 1000000), ('lamp', 1000000);

CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    item TEXT NOT NULL REFERENCES stock (item),
    version TEXT NOT NULL,
    mirror BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_request_id ON orders (request_id);

CREATE TABLE reservations (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    item TEXT NOT NULL REFERENCES stock (item),
    purpose TEXT NOT NULL,
    mirror BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX reservations_request_id ON reservations (request_id);

CREATE TABLE shipments (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    carrier TEXT NOT NULL,
    version TEXT NOT NULL,
    mirror BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX shipments_request_id ON shipments (request_id);
