// The Java client's admin calls (kafka-clients 4.4) against a broker with a
// SASL_PLAINTEXT listener, PLAIN users `admin` (a super user) and `alice`,
// and Kafka's StandardAuthorizer: partitions added, configs described and
// altered, records deleted, group offsets reset, ACLs created, listed,
// enforced and deleted, client telemetry pushed (KIP-714), and the metadata
// quorum and features. Each check prints `ok <check>`.
// Usage: java -cp <classpath> JavaAdmin.java BOOTSTRAP ADMIN_URL
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.*;
import org.apache.kafka.common.resource.*;
import org.apache.kafka.common.serialization.*;

public class JavaAdmin {
    static String bootstrap;
    static String adminUrl;

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    /** Client settings of a PLAIN login as `user` (password `<user>-secret`). */
    static Properties as(String user) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("security.protocol", "SASL_PLAINTEXT");
        p.put("sasl.mechanism", "PLAIN");
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=\""
            + user + "\" password=\"" + user + "-secret\";");
        return p;
    }

    static KafkaProducer<String, String> producer(Properties base) {
        Properties p = new Properties();
        p.putAll(base);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("linger.ms", "1");
        p.put("max.block.ms", "10000");
        p.put("delivery.timeout.ms", "10000");
        p.put("request.timeout.ms", "5000");
        return new KafkaProducer<>(p);
    }

    static Properties consumerProps(Properties base, String group) {
        Properties c = new Properties();
        c.putAll(base);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        if (group != null) c.put("group.id", group);
        return c;
    }

    /** Produces `count` records round-robin over `partitions` partitions of `topic` and waits for every ack. */
    static void produce(Admin admin, String topic, int partitions, int count) throws Exception {
        try (KafkaProducer<String, String> producer = producer(as("admin"))) {
            List<java.util.concurrent.Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) sent.add(producer.send(new ProducerRecord<>(topic, i % partitions, "k" + i, "v" + i)));
            for (var f : sent) f.get();
        }
    }

    /** The exception `future` failed with (the cause of its ExecutionException); fails if it succeeded. */
    static Throwable failure(org.apache.kafka.common.KafkaFuture<?> future, String what) throws InterruptedException {
        try {
            future.get();
        } catch (ExecutionException e) {
            return e.getCause();
        }
        throw new AssertionError(what + " succeeded");
    }

    static void createPartitions(Admin admin) throws Exception {
        String topic = "ja-grow";
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all().get();
        var description = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        check(description.partitions().size() == 3, "3 partitions after the increase: " + description);
        for (int i = 0; i < 3; i++) check(description.partitions().get(i).partition() == i, "partition " + i);
        // The new partitions take records.
        produce(admin, topic, 3, 30);
        Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
        for (int i = 0; i < 3; i++) latest.put(new TopicPartition(topic, i), OffsetSpec.latest());
        var ends = admin.listOffsets(latest).all().get();
        for (var e : ends.entrySet()) check(e.getValue().offset() == 10, e.getKey() + " holds 10: " + e.getValue());
        // Fewer partitions than there are is refused, as is the same count.
        Throwable fewer = failure(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all(), "shrinking");
        check(fewer instanceof InvalidPartitionsException, "shrinking refused with " + fewer);
        Throwable same = failure(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all(), "same count");
        check(same instanceof InvalidPartitionsException, "the same count refused with " + same);
        Throwable missing = failure(admin.createPartitions(Map.of("ja-absent", NewPartitions.increaseTo(3))).all(), "absent");
        check(missing instanceof UnknownTopicOrPartitionException, "an absent topic refused with " + missing);
        System.out.println("ok create-partitions");
    }

    static Map<String, ConfigEntry> describe(Admin admin, ConfigResource resource) throws Exception {
        Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
        return config.entries().stream().collect(Collectors.toMap(ConfigEntry::name, e -> e));
    }

    static void configs(Admin admin) throws Exception {
        String topic = "ja-configs";
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1)
            .configs(Map.of("retention.ms", "3600000", "max.message.bytes", "200000")))).all().get();
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        var entries = describe(admin, resource);
        check(entries.get("retention.ms").value().equals("3600000"), "retention.ms " + entries.get("retention.ms"));
        check(entries.get("retention.ms").source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "set at creation");
        check(entries.get("cleanup.policy").value().equals("delete"), "cleanup.policy " + entries.get("cleanup.policy"));
        check(entries.get("cleanup.policy").source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG, "a default");
        check(entries.get("cleanup.policy").isDefault(), "isDefault");

        admin.incrementalAlterConfigs(Map.of(resource, List.of(
            new AlterConfigOp(new ConfigEntry("retention.ms", "86400000"), AlterConfigOp.OpType.SET),
            new AlterConfigOp(new ConfigEntry("max.message.bytes", ""), AlterConfigOp.OpType.DELETE),
            new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND)))).all().get();
        entries = describe(admin, resource);
        check(entries.get("retention.ms").value().equals("86400000"), "retention.ms altered: " + entries.get("retention.ms"));
        check(entries.get("max.message.bytes").source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG,
            "max.message.bytes back to its default: " + entries.get("max.message.bytes"));
        check(entries.get("max.message.bytes").value().equals("1048588"), "the default max.message.bytes: " + entries.get("max.message.bytes"));
        check(entries.get("cleanup.policy").value().equals("delete,compact"), "appended: " + entries.get("cleanup.policy"));
        check(entries.get("cleanup.policy").source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "cleanup.policy set");

        // Bad values and unknown names are refused and change nothing.
        Throwable bad = failure(admin.incrementalAlterConfigs(Map.of(resource, List.of(
            new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET)))).all(), "a bad value");
        check(bad instanceof InvalidConfigurationException, "a bad value refused with " + bad);
        Throwable unknown = failure(admin.incrementalAlterConfigs(Map.of(resource, List.of(
            new AlterConfigOp(new ConfigEntry("no.such.config", "1"), AlterConfigOp.OpType.SET)))).all(), "an unknown name");
        check(unknown instanceof InvalidConfigurationException, "an unknown name refused with " + unknown);
        check(describe(admin, resource).get("retention.ms").value().equals("86400000"), "unchanged by refused changes");
        // validateOnly changes nothing.
        admin.incrementalAlterConfigs(Map.of(resource, List.of(
            new AlterConfigOp(new ConfigEntry("retention.ms", "1000"), AlterConfigOp.OpType.SET))),
            new AlterConfigsOptions().validateOnly(true)).all().get();
        check(describe(admin, resource).get("retention.ms").value().equals("86400000"), "unchanged by validateOnly");

        // The broker's own configs.
        String node = admin.describeCluster().nodes().get().iterator().next().idString();
        var broker = describe(admin, new ConfigResource(ConfigResource.Type.BROKER, node));
        check(broker.get("node.id").value().equals(node), "the broker's node.id: " + broker.get("node.id"));
        check(broker.containsKey("log.retention.ms") && broker.containsKey("num.partitions"), "the broker's configs: " + broker.keySet());
        System.out.println("ok configs");
    }

    static void deleteRecords(Admin admin) throws Exception {
        String topic = "ja-records";
        admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get();
        produce(admin, topic, 2, 200);
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        var deleted = admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(40), p1, RecordsToDelete.beforeOffset(-1)))
            .lowWatermarks();
        check(deleted.get(p0).get().lowWatermark() == 40, "p0's low watermark " + deleted.get(p0).get().lowWatermark());
        check(deleted.get(p1).get().lowWatermark() == 100, "-1 deletes everything: " + deleted.get(p1).get().lowWatermark());
        var earliest = admin.listOffsets(Map.of(p0, OffsetSpec.earliest(), p1, OffsetSpec.earliest())).all().get();
        check(earliest.get(p0).offset() == 40, "p0 starts at 40: " + earliest.get(p0));
        check(earliest.get(p1).offset() == 100, "p1 starts at 100: " + earliest.get(p1));
        var latest = admin.listOffsets(Map.of(p0, OffsetSpec.latest())).all().get();
        check(latest.get(p0).offset() == 100, "p0 still ends at 100: " + latest.get(p0));
        // Past the high watermark is out of range.
        Throwable past = failure(admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(101))).all(), "past the end");
        check(past instanceof org.apache.kafka.common.errors.OffsetOutOfRangeException, "past the end refused with " + past);
        // A consumer from the beginning starts at the new log start.
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(as("admin"), null))) {
            consumer.assign(List.of(p0));
            consumer.seekToBeginning(List.of(p0));
            check(consumer.position(p0) == 40, "the consumer's beginning is 40");
            long deadline = System.currentTimeMillis() + 30_000;
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            while (got.isEmpty()) {
                check(System.currentTimeMillis() < deadline, "no records after the log start");
                consumer.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            check(got.get(0).offset() == 40 && got.get(0).value().equals("v80"), "the first record left is offset 40: " + got.get(0));
        }
        System.out.println("ok delete-records");
    }

    static void groupOffsets(Admin admin) throws Exception {
        String topic = "ja-offsets";
        String group = "ja-reset";
        admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get();
        produce(admin, topic, 2, 100);
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(as("admin"), group))) {
            consumer.subscribe(List.of(topic));
            int read = 0;
            long deadline = System.currentTimeMillis() + 60_000;
            while (read < 100) {
                check(System.currentTimeMillis() < deadline, "group read timed out at " + read);
                read += consumer.poll(Duration.ofMillis(200)).count();
            }
            consumer.commitSync();
            // While the group has a member, an admin may not move its offsets.
            Throwable busy = failure(admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(1))).all(), "altering a live group");
            check(busy instanceof UnknownMemberIdException, "altering a live group refused with " + busy);
        }
        var committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        check(committed.get(p0).offset() == 50 && committed.get(p1).offset() == 50, "the consumer committed 50, 50: " + committed);

        admin.alterConsumerGroupOffsets(group, Map.of(
            p0, new OffsetAndMetadata(10, "reset by admin"),
            p1, new OffsetAndMetadata(5))).all().get();
        committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        check(committed.get(p0).offset() == 10 && committed.get(p0).metadata().equals("reset by admin"), "p0 reset: " + committed);
        check(committed.get(p1).offset() == 5, "p1 reset: " + committed);

        admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all().get();
        committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        check(committed.containsKey(p0) && !committed.containsKey(p1), "p1's offset deleted: " + committed);

        // A member of the group now starts where the admin put it: p0 at 10, p1 (no offset) from the earliest.
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(as("admin"), group))) {
            consumer.subscribe(List.of(topic));
            Map<Integer, Long> first = new HashMap<>();
            long deadline = System.currentTimeMillis() + 60_000;
            while (first.size() < 2) {
                check(System.currentTimeMillis() < deadline, "the restarted member read " + first);
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) first.putIfAbsent(r.partition(), r.offset());
            }
            check(first.get(0) == 10 && first.get(1) == 0, "the member resumed at " + first);
        }
        System.out.println("ok group-offsets");
    }

    static AclBinding acl(ResourceType type, String name, PatternType pattern, AclOperation op) {
        return new AclBinding(new ResourcePattern(type, name, pattern),
            new AccessControlEntry("User:alice", "*", op, AclPermissionType.ALLOW));
    }

    /** Sends one record as alice to `topic`: null if acknowledged, else the failure's cause. */
    static Throwable aliceSends(String topic) throws InterruptedException {
        Properties p = as("alice");
        p.put("enable.idempotence", "false"); // no IDEMPOTENT_WRITE on the cluster for alice
        try (KafkaProducer<String, String> producer = producer(p)) {
            producer.send(new ProducerRecord<>(topic, 0, "k", "from alice")).get();
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (KafkaException e) {
            return e;
        }
    }

    static void acls(Admin admin) throws Exception {
        admin.createTopics(List.of(new NewTopic("ja-acl-open", 1, (short) 1), new NewTopic("ja-acl-closed", 1, (short) 1))).all().get();
        AclBinding write = acl(ResourceType.TOPIC, "ja-acl-open", PatternType.LITERAL, AclOperation.WRITE);
        AclBinding describe = acl(ResourceType.TOPIC, "ja-acl-", PatternType.PREFIXED, AclOperation.DESCRIBE);
        AclBinding group = acl(ResourceType.GROUP, "ja-alice", PatternType.LITERAL, AclOperation.READ);
        admin.createAcls(List.of(write, describe, group)).all().get();

        AclBindingFilter alices = new AclBindingFilter(ResourcePatternFilter.ANY,
            new AccessControlEntryFilter("User:alice", null, AclOperation.ANY, AclPermissionType.ANY));
        Set<AclBinding> listed = new HashSet<>(admin.describeAcls(alices).values().get());
        check(listed.equals(Set.of(write, describe, group)), "alice's ACLs listed: " + listed);
        AclBindingFilter topics = new AclBindingFilter(
            new ResourcePatternFilter(ResourceType.TOPIC, null, PatternType.ANY), AccessControlEntryFilter.ANY);
        listed = new HashSet<>(admin.describeAcls(topics).values().get());
        check(listed.equals(Set.of(write, describe)), "the topic ACLs listed: " + listed);
        // MATCH: every pattern that applies to the topic ja-acl-open.
        AclBindingFilter applying = new AclBindingFilter(
            new ResourcePatternFilter(ResourceType.TOPIC, "ja-acl-open", PatternType.MATCH), AccessControlEntryFilter.ANY);
        listed = new HashSet<>(admin.describeAcls(applying).values().get());
        check(listed.equals(Set.of(write, describe)), "the ACLs matching ja-acl-open: " + listed);

        // Enforced: alice writes where allowed and nowhere else.
        Throwable open = aliceSends("ja-acl-open");
        check(open == null, "alice may write to ja-acl-open: " + open);
        Throwable closed = aliceSends("ja-acl-closed");
        check(closed instanceof TopicAuthorizationException, "alice writing to ja-acl-closed: " + closed);
        // An admin call alice may not make.
        Properties alice = as("alice");
        try (Admin aliceAdmin = Admin.create(alice)) {
            Throwable create = failure(aliceAdmin.createTopics(List.of(new NewTopic("ja-acl-alice", 1, (short) 1))).all(), "alice creating a topic");
            check(create instanceof TopicAuthorizationException, "alice creating a topic: " + create);
            Throwable listAcls = failure(aliceAdmin.describeAcls(AclBindingFilter.ANY).values(), "alice listing ACLs");
            check(listAcls instanceof ClusterAuthorizationException, "alice listing ACLs: " + listAcls);
        }

        // Deleted: the WRITE goes, alice is refused, the others stay.
        var deleted = admin.deleteAcls(List.of(write.toFilter())).all().get();
        check(deleted.equals(List.of(write)), "deleted " + deleted);
        listed = new HashSet<>(admin.describeAcls(alices).values().get());
        check(listed.equals(Set.of(describe, group)), "left after the delete: " + listed);
        Throwable revoked = aliceSends("ja-acl-open");
        check(revoked instanceof TopicAuthorizationException, "alice writing after the delete: " + revoked);
        // The record alice wrote while allowed is there.
        var latest = admin.listOffsets(Map.of(new TopicPartition("ja-acl-open", 0), OffsetSpec.latest())).all().get();
        check(latest.values().iterator().next().offset() == 1, "alice's one record: " + latest);
        System.out.println("ok acls");
    }

    static String get(String path) throws Exception {
        HttpResponse<String> answer = HttpClient.newHttpClient().send(
            HttpRequest.newBuilder(URI.create(adminUrl + path)).timeout(Duration.ofSeconds(10)).build(),
            HttpResponse.BodyHandlers.ofString());
        check(answer.statusCode() == 200, path + " answered " + answer.statusCode());
        return answer.body();
    }

    static void telemetry(Admin admin) throws Exception {
        ConfigResource subscription = new ConfigResource(ConfigResource.Type.CLIENT_METRICS, "ja-producers");
        admin.incrementalAlterConfigs(Map.of(subscription, List.of(
            new AlterConfigOp(new ConfigEntry("metrics", "org.apache.kafka.producer."), AlterConfigOp.OpType.SET),
            new AlterConfigOp(new ConfigEntry("interval.ms", "1000"), AlterConfigOp.OpType.SET),
            new AlterConfigOp(new ConfigEntry("match", "client_id=ja-telemetry"), AlterConfigOp.OpType.SET)))).all().get();
        check(describe(admin, subscription).get("interval.ms").value().equals("1000"), "the subscription reads back");
        admin.createTopics(List.of(new NewTopic("ja-telemetry", 1, (short) 1))).all().get();
        Properties p = as("admin");
        p.put("client.id", "ja-telemetry");
        check(!p.containsKey("enable.metrics.push"), "on the client's default");
        String found = null;
        try (KafkaProducer<String, String> producer = producer(p)) {
            long deadline = System.currentTimeMillis() + 30_000;
            int i = 0;
            while (found == null) {
                check(System.currentTimeMillis() < deadline, "the Java producer's metrics never showed on /metrics");
                producer.send(new ProducerRecord<>("ja-telemetry", "k", "v" + i++)).get();
                Thread.sleep(250);
                for (String line : get("/metrics").split("\n")) {
                    if (line.startsWith("sluice_client_metric{") && line.contains("client_id=\"ja-telemetry\"")
                        && line.contains("name=\"org.apache.kafka.producer.")) {
                        found = line;
                        break;
                    }
                }
            }
        }
        check(found.contains("client_software_name=\"apache-kafka-java\""), "the Java client named: " + found);
        String clients = get("/api/clients");
        check(clients.contains("\"ja-telemetry\""), "/api/clients lists the producer: " + clients);
        check(clients.contains("org.apache.kafka.producer."), "/api/clients shows its metrics");
        // Only the subscribed metrics are pushed.
        for (String line : get("/metrics").split("\n")) {
            if (line.startsWith("sluice_client_metric{") && line.contains("client_id=\"ja-telemetry\"")) {
                check(line.contains("name=\"org.apache.kafka.producer."), "an unsubscribed metric pushed: " + line);
            }
        }
        System.out.println("ok telemetry");
    }

    static void quorumAndFeatures(Admin admin) throws Exception {
        int controller = admin.describeCluster().controller().get().id();
        QuorumInfo quorum = admin.describeMetadataQuorum().quorumInfo().get();
        check(quorum.leaderId() == controller, "the quorum leader is the controller: " + quorum);
        check(quorum.voters().size() == 1 && quorum.voters().get(0).replicaId() == controller, "one voter: " + quorum);
        check(quorum.observers().isEmpty(), "no observers: " + quorum);
        check(quorum.highWatermark() > 0, "catalog changes committed: " + quorum);
        check(quorum.voters().get(0).logEndOffset() == quorum.highWatermark(), "the voter is caught up: " + quorum);

        FeatureMetadata features = admin.describeFeatures().featureMetadata().get();
        check(features.finalizedFeatures().containsKey("metadata.version"), "metadata.version finalized: " + features);
        check(features.finalizedFeatures().get("transaction.version").maxVersionLevel() == 2, "transaction.version 2: " + features);
        check(features.supportedFeatures().get("transaction.version").maxVersion() == 2, "supports up to 2: " + features);
        long epoch = features.finalizedFeaturesEpoch().orElse(-1L);

        admin.updateFeatures(Map.of("transaction.version", new FeatureUpdate((short) 1, FeatureUpdate.UpgradeType.SAFE_DOWNGRADE)),
            new UpdateFeaturesOptions()).all().get();
        features = admin.describeFeatures().featureMetadata().get();
        check(features.finalizedFeatures().get("transaction.version").maxVersionLevel() == 1, "downgraded to 1: " + features);
        check(features.finalizedFeaturesEpoch().orElse(-1L) > epoch, "a new epoch: " + features);
        // A dry run changes nothing.
        admin.updateFeatures(Map.of("transaction.version", new FeatureUpdate((short) 2, FeatureUpdate.UpgradeType.UPGRADE)),
            new UpdateFeaturesOptions().validateOnly(true)).all().get();
        features = admin.describeFeatures().featureMetadata().get();
        check(features.finalizedFeatures().get("transaction.version").maxVersionLevel() == 1, "validateOnly: " + features);
        Throwable beyond = failure(admin.updateFeatures(
            Map.of("transaction.version", new FeatureUpdate((short) 3, FeatureUpdate.UpgradeType.UPGRADE)),
            new UpdateFeaturesOptions()).all(), "an unsupported level");
        check(beyond instanceof InvalidUpdateVersionException, "an unsupported level refused with " + beyond);
        admin.updateFeatures(Map.of("transaction.version", new FeatureUpdate((short) 2, FeatureUpdate.UpgradeType.UPGRADE)),
            new UpdateFeaturesOptions()).all().get();
        features = admin.describeFeatures().featureMetadata().get();
        check(features.finalizedFeatures().get("transaction.version").maxVersionLevel() == 2, "upgraded to 2: " + features);

        // Through the controller endpoint (bootstrap.controllers), as --bootstrap-controller does.
        Properties viaController = as("admin");
        viaController.remove("bootstrap.servers");
        viaController.put("bootstrap.controllers", bootstrap);
        try (Admin controllerAdmin = Admin.create(viaController)) {
            QuorumInfo again = controllerAdmin.describeMetadataQuorum().quorumInfo().get();
            check(again.leaderId() == controller, "the same leader via the controller: " + again);
            var finalized = controllerAdmin.describeFeatures().featureMetadata().get().finalizedFeatures();
            check(finalized.get("transaction.version").maxVersionLevel() == 2, "the same features via the controller");
        }
        System.out.println("ok quorum-features");
    }

    // Kafka's API exceptions carry no stack trace, which the source launcher
    // fails on while reporting them: they are printed here instead.
    public static void main(String[] args) {
        try {
            run(args);
        } catch (Throwable e) {
            e.printStackTrace();
            System.exit(1);
        }
    }

    static void run(String[] args) throws Exception {
        bootstrap = args[0];
        adminUrl = args[1];
        try (Admin admin = Admin.create(as("admin"))) {
            createPartitions(admin);
            configs(admin);
            deleteRecords(admin);
            groupOffsets(admin);
            acls(admin);
            telemetry(admin);
            quorumAndFeatures(admin);
        }
        System.out.println("java admin ok");
    }
}
