// The Java client's transactional producer (kafka-clients 4.1) for the
// cluster nemesis: transaction after transaction on TOPIC, one record per
// partition each ("j<n>-<partition>"), every fifth aborted on purpose after
// its records are flushed into the log, until STOPFILE exists. It handles
// errors as the Java client's documentation says an application should: a
// timed-out initTransactions, commitTransaction or abortTransaction is called
// again; an abortable error aborts the transaction; a fatal one ends the
// program. It prints what each transaction came to, for the test's checker:
//   COMMITTED <n>   ABORTED <n>   FATAL <error>   DONE
// Usage: java -cp <classpath> JavaNemesisTransactions.java BOOTSTRAP TOPIC PARTITIONS TRANSACTIONAL_ID STOPFILE
import java.nio.file.*;
import java.util.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.*;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaNemesisTransactions {
    static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    /// Errors after which the producer cannot go on (the Java client's docs).
    static boolean fatal(KafkaException e) {
        return e instanceof ProducerFencedException
            || e instanceof OutOfOrderSequenceException
            || e instanceof AuthorizationException
            || e instanceof UnsupportedVersionException
            || e instanceof InvalidTxnStateException;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], txnId = args[3];
        int partitions = Integer.parseInt(args[2]);
        Path stop = Paths.get(args[4]);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("transactional.id", txnId);
        p.put("transaction.timeout.ms", "300000");
        p.put("linger.ms", "1");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            while (true) {
                try {
                    producer.initTransactions();
                    break;
                } catch (TimeoutException e) {
                    System.err.println("initTransactions timed out; again: " + e);
                }
            }
            for (int n = 0; !Files.exists(stop); n++) {
                long began = System.currentTimeMillis();
                producer.beginTransaction();
                boolean abort = n % 5 == 4;
                try {
                    for (int partition = 0; partition < partitions; partition++) {
                        producer.send(new ProducerRecord<>(topic, partition, "k", "j" + n + "-" + partition));
                    }
                    if (abort) {
                        // The records are in the log before the abort, so a reader could see them.
                        producer.flush();
                    }
                } catch (KafkaException e) {
                    if (fatal(e)) throw e;
                    System.err.println("transaction " + n + ": send failed, aborting: " + e);
                    abort = true;
                }
                while (!abort) {
                    try {
                        producer.commitTransaction();
                        break;
                    } catch (TimeoutException e) {
                        System.err.println("transaction " + n + ": commit timed out; again: " + e);
                    } catch (KafkaException e) {
                        if (fatal(e)) throw e;
                        System.err.println("transaction " + n + ": commit failed, aborting: " + e);
                        abort = true;
                    }
                }
                while (abort) {
                    try {
                        producer.abortTransaction();
                        break;
                    } catch (TimeoutException e) {
                        System.err.println("transaction " + n + ": abort timed out; again: " + e);
                    }
                }
                long took = System.currentTimeMillis() - began;
                if (took > 5_000) System.err.println("transaction " + n + " took " + took + " ms");
                say((abort ? "ABORTED " : "COMMITTED ") + n);
            }
        } catch (KafkaException e) {
            say("FATAL " + e);
            e.printStackTrace();
            System.exit(1);
        }
        say("DONE");
    }
}
