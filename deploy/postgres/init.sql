-- One database per service; each service owns its schema through its own migrations.
CREATE DATABASE csm_customer;
CREATE DATABASE csm_segmentation;
CREATE DATABASE csm_complaints;
CREATE DATABASE csm_notify;
