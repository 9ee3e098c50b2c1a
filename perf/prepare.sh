# The start every side-by-side perf script shares. Sourced from the
# repository's root; needs DATA. prepare_bench builds the broker and the load
# generator, fetches Kafka's jars, sets CP (Kafka's classpath) and PERF (the
# load generator), and empties $DATA with a results folder in it.

prepare_bench() {
    # Two builds: together, the load generator's librdkafka features would
    # change the broker's dependencies.
    cargo build --release -q -p sluice
    cargo build --release -q -p sluice-perf
    (cd perf/kafka && mvn -q dependency:copy-dependencies)
    CP="perf/kafka/target/dependency/*"
    PERF=target/release/sluice-perf
    rm -rf "$DATA" && mkdir -p "$DATA/results"
}
