// Transactions V2 (KIP-890 part 2) with the Java client. Mode "v2" expects
// a new cluster's transaction.version 2: commit and abort, each bumping the
// producer epoch (seen by describeTransactions and describeProducers),
// partitions that join the transaction when first produced to,
// sendOffsetsToTransaction, read_committed, and fencing by a second
// producer with the same transactional.id. Mode "v1" sets the level to 1
// and runs a transaction the classic way, whose epoch stays.
// Usage: java -cp <classpath> JavaTransactionsV2.java BOOTSTRAP v2|v1
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.*;

public class JavaTransactionsV2 {
    static final String TOPIC = "tv2";
    static final int PARTITIONS = 3;

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static Properties producerProps(String bootstrap, String txnId) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("transactional.id", txnId);
        return p;
    }

    static List<String> readCommitted(String bootstrap) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("enable.auto.commit", "false");
        c.put("isolation.level", "read_committed");
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < PARTITIONS; i++) tps.add(new TopicPartition(TOPIC, i));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps);
            long deadline = System.currentTimeMillis() + 30_000;
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) done &= consumer.position(tp) >= end.get(tp);
                if (done) break;
                check(System.currentTimeMillis() < deadline, "read to the end");
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) values.add(r.value());
            }
        }
        return values;
    }

    static TransactionDescription describe(Admin admin, String id) throws Exception {
        return admin.describeTransactions(List.of(id)).all().get().get(id);
    }

    static short finalizedLevel(Admin admin) throws Exception {
        FinalizedVersionRange range =
            admin.describeFeatures().featureMetadata().get().finalizedFeatures().get("transaction.version");
        return range == null ? 0 : range.maxVersionLevel();
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
        String bootstrap = args[0];
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(common)) {
            if (args[1].equals("v1")) {
                v1(bootstrap, admin);
            } else {
                v2(bootstrap, admin);
            }
        }
    }

    static void v2(String bootstrap, Admin admin) throws Exception {
        check(finalizedLevel(admin) == 2, "a new cluster finalizes transaction.version 2");
        admin.createTopics(List.of(new NewTopic(TOPIC, PARTITIONS, (short) 1))).all().get();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps(bootstrap, "tv2-txn"))) {
            producer.initTransactions();
            TransactionDescription start = describe(admin, "tv2-txn");
            int epoch = start.producerEpoch();

            // Commit: every partition joins when first produced to, and the epoch goes up by one.
            producer.beginTransaction();
            for (int p = 0; p < PARTITIONS; p++) producer.send(new ProducerRecord<>(TOPIC, p, "k", "c" + p)).get();
            TransactionDescription open = describe(admin, "tv2-txn");
            check(open.state() == TransactionState.ONGOING, "ongoing: " + open);
            for (int p = 0; p < PARTITIONS; p++) {
                check(open.topicPartitions().contains(new TopicPartition(TOPIC, p)), "partition " + p + " joined: " + open);
            }
            producer.commitTransaction();
            TransactionDescription committed = describe(admin, "tv2-txn");
            check(committed.state() == TransactionState.COMPLETE_COMMIT, "committed: " + committed);
            check(committed.producerEpoch() == epoch + 1, "commit bumps the epoch: " + epoch + " -> " + committed);
            check(committed.producerId() == start.producerId(), "same producer id");

            // Abort: bumped again; the client continues with the new epoch.
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(TOPIC, 0, "k", "aborted")).get();
            producer.abortTransaction();
            TransactionDescription aborted = describe(admin, "tv2-txn");
            check(aborted.state() == TransactionState.COMPLETE_ABORT, "aborted: " + aborted);
            check(aborted.producerEpoch() == epoch + 2, "abort bumps the epoch: " + aborted);

            // Records and offsets in one transaction, without AddOffsetsToTxn.
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(TOPIC, 1, "k", "third")).get();
            producer.sendOffsetsToTransaction(
                Map.of(new TopicPartition(TOPIC, 2), new OffsetAndMetadata(1)), new ConsumerGroupMetadata("tv2-group"));
            producer.commitTransaction();
            check(describe(admin, "tv2-txn").producerEpoch() == epoch + 3, "third transaction bumps");
            TopicPartition tp1 = new TopicPartition(TOPIC, 1);
            DescribeProducersResult.PartitionProducerState state =
                admin.describeProducers(List.of(tp1)).partitionResult(tp1).get();
            check(state.activeProducers().stream()
                    .anyMatch(s -> s.producerId() == start.producerId() && s.producerEpoch() == epoch + 3
                        && s.currentTransactionStartOffset().isEmpty()),
                "describeProducers shows the bumped epoch of the marker: " + state.activeProducers());
            Map<TopicPartition, OffsetAndMetadata> offsets =
                admin.listConsumerGroupOffsets("tv2-group").partitionsToOffsetAndMetadata().get();
            check(offsets.get(new TopicPartition(TOPIC, 2)).offset() == 1, "offsets committed: " + offsets);
        }

        // Fencing: the newer producer wins, the older one's transaction is aborted.
        KafkaProducer<String, String> zombie = new KafkaProducer<>(producerProps(bootstrap, "tv2-fence"));
        zombie.initTransactions();
        zombie.beginTransaction();
        zombie.send(new ProducerRecord<>(TOPIC, 0, "k", "zombie")).get();
        try (KafkaProducer<String, String> current = new KafkaProducer<>(producerProps(bootstrap, "tv2-fence"))) {
            current.initTransactions();
            boolean fenced = false;
            try {
                zombie.commitTransaction();
            } catch (ProducerFencedException e) {
                fenced = true;
            } catch (KafkaException e) {
                fenced = e.getCause() instanceof ProducerFencedException;
            }
            check(fenced, "the older producer is fenced");
            zombie.close(Duration.ZERO);
            current.beginTransaction();
            current.send(new ProducerRecord<>(TOPIC, 2, "k", "current")).get();
            current.commitTransaction();
        }

        List<String> values = readCommitted(bootstrap);
        Collections.sort(values);
        check(values.equals(List.of("c0", "c1", "c2", "current", "third")), "read_committed: " + values);
        System.out.println("java transactions v2 ok");
    }

    static void v1(String bootstrap, Admin admin) throws Exception {
        admin.updateFeatures(
            Map.of("transaction.version", new FeatureUpdate((short) 1, FeatureUpdate.UpgradeType.SAFE_DOWNGRADE)),
            new UpdateFeaturesOptions()).all().get();
        check(finalizedLevel(admin) == 1, "transaction.version set to 1");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps(bootstrap, "tv1-txn"))) {
            producer.initTransactions();
            int epoch = describe(admin, "tv1-txn").producerEpoch();
            for (int round = 0; round < 2; round++) {
                producer.beginTransaction();
                producer.send(new ProducerRecord<>(TOPIC, 0, "k", "v1-" + round)).get();
                producer.commitTransaction();
            }
            TransactionDescription d = describe(admin, "tv1-txn");
            check(d.state() == TransactionState.COMPLETE_COMMIT && d.producerEpoch() == epoch,
                "at level 1 the epoch stays: " + epoch + " -> " + d);
        }
        List<String> values = readCommitted(bootstrap);
        check(values.contains("v1-0") && values.contains("v1-1"), "read_committed: " + values);
        System.out.println("java transactions v1 ok");
    }
}
