#!/usr/bin/env bash
# The kafka-init step of docker-compose.yml: as the admin super user, the SCRAM credentials of csm's
# principals and their ACLs. Running it again changes nothing but passwords that changed.
#
# Each service may write its own topic and its dead-letter topic, and read the topics it consumes
# with its own consumer groups (csm.<service>.<epoch>, one per broker log: shared/inbox.py). All
# of them may read and write csm.epoch: the first record there names the broker's log
# (shared/bus.py), any service may be the first to start, and a later record changes nothing.
# csm-topics, the `csm topics` step, may create csm's topics and nothing else.
# tests/deploy/test_deploy.py holds these to the topics and consumers in the code.
set -euo pipefail

bootstrap=kafka:9092
admin=/tmp/admin.properties
umask 077
cat > "$admin" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${ADMIN_PASSWORD}";
PROPERTIES

user() {  # name, password
    /opt/kafka/bin/kafka-configs.sh --bootstrap-server "$bootstrap" --command-config "$admin" \
        --alter --entity-type users --entity-name "$1" --add-config "SCRAM-SHA-512=[password=$2]"
}

acl() {  # kafka-acls.sh arguments after --add
    /opt/kafka/bin/kafka-acls.sh --bootstrap-server "$bootstrap" --command-config "$admin" --add "$@"
}

user csm-topics "$TOPICS_PASSWORD"
user csm-customer "$CUSTOMER_PASSWORD"
user csm-segmentation "$SEGMENTATION_PASSWORD"
user csm-complaints "$COMPLAINTS_PASSWORD"
user csm-notify "$NOTIFY_PASSWORD"

acl --allow-principal User:csm-topics --operation Create --operation Describe --resource-pattern-type prefixed --topic csm.

acl --allow-principal User:csm-customer --operation Write --operation Describe --topic csm.customer --topic csm.dlq.customer
acl --allow-principal User:csm-customer --operation Read --operation Describe --topic csm.complaints --topic csm.notify --topic csm.segmentation
acl --allow-principal User:csm-customer --operation Read --resource-pattern-type prefixed --group csm.customer.
acl --allow-principal User:csm-customer --operation Read --operation Write --operation Describe --topic csm.epoch

acl --allow-principal User:csm-segmentation --operation Write --operation Describe --topic csm.segmentation --topic csm.dlq.segmentation
acl --allow-principal User:csm-segmentation --operation Read --operation Describe --topic csm.complaints --topic csm.customer
acl --allow-principal User:csm-segmentation --operation Read --resource-pattern-type prefixed --group csm.segmentation.
acl --allow-principal User:csm-segmentation --operation Read --operation Write --operation Describe --topic csm.epoch

acl --allow-principal User:csm-complaints --operation Write --operation Describe --topic csm.complaints --topic csm.dlq.complaints
acl --allow-principal User:csm-complaints --operation Read --operation Describe --topic csm.complaints.intake --topic csm.customer --topic csm.segmentation
acl --allow-principal User:csm-complaints --operation Read --resource-pattern-type prefixed --group csm.complaints.
acl --allow-principal User:csm-complaints --operation Read --operation Write --operation Describe --topic csm.epoch

acl --allow-principal User:csm-notify --operation Write --operation Describe --topic csm.notify --topic csm.dlq.notify
acl --allow-principal User:csm-notify --operation Read --operation Describe --topic csm.complaints --topic csm.customer --topic csm.segmentation
acl --allow-principal User:csm-notify --operation Read --resource-pattern-type prefixed --group csm.notify.
acl --allow-principal User:csm-notify --operation Read --operation Write --operation Describe --topic csm.epoch

echo "kafka-init: csm's principals and ACLs are in place"
