-- One database per service; each service owns its schema through its own migrations.
CREATE DATABASE csm_customer;
CREATE DATABASE csm_segmentation;
CREATE DATABASE csm_complaints;
CREATE DATABASE csm_notify;
-- The customers' keys that seal personal data in events, shared by the four services.
CREATE DATABASE csm_keys;
