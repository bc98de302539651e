// kclient: the Kafka client the operator e2e tests (e2e/operator-test.sh, e2e/roll-test.sh) run
// in pods, through `kubectl exec` or as a container's command, against a KafkaCluster's
// bootstrap Service. A static Go program on
// franz-go (a Kafka client nobody here wrote), packed FROM scratch by e2e/build-test-image.sh.
//
//	kclient sleep                                 wait for SIGTERM (the pod's main process)
//	kclient describe -b ADDR -t TOPIC [-config K,K]
//	                                              "partitions N", "replicas R" (the smallest
//	                                              replica count of any partition), one
//	                                              "partition P leader L replicas [..] isr [..]"
//	                                              per partition, then "config K=V" for each K
//	kclient absent -b ADDR -t TOPIC               exit 0 when the brokers do not know TOPIC
//	kclient brokers -b ADDR                       one "broker ID HOST:PORT rack R" per broker in
//	                                              Metadata, by id (R is "-" without a rack)
//	kclient assignment -b ADDR [-t TOPIC,TOPIC]   the replica assignment of every topic,
//	                                              internal ones included (or of the topics
//	                                              named): one "TOPIC PARTITION LEADER
//	                                              REPLICA... isr ISR..." per partition, replicas
//	                                              in Metadata's order; see assignment.go
//	kclient produce -b ADDR -t TOPIC -n N -prefix P
//	                                              N records P-0..P-(N-1) (key = value), acks=all;
//	                                              prints "produced N"
//	kclient load -b ADDR -t TOPIC [-rate 200] [-size 1024] [-duration 0] [-acks FILE]
//	             [-produce-max-version V] [-stop-file F]
//	                                              an idempotent acks=all producer at a steady
//	                                              rate (records/s) until -duration passes,
//	                                              SIGTERM/SIGINT or F appears; a progress line
//	                                              each second on stderr, then "load sent S
//	                                              acked A errors E longest_pause_ms P at T
//	                                              retries R" (the longest time between two
//	                                              acknowledgements, and when; R counts the
//	                                              produce errors the client retried, by Kafka
//	                                              error name, e.g. NOT_ENOUGH_REPLICAS=3, and
//	                                              "request" for failed requests) started U (the
//	                                              start, Unix seconds); -acks writes
//	                                              "partition offset key" per acknowledgement
//	                                              (the key is the record's sequence number);
//	                                              -produce-max-version caps the Produce version
//	kclient group -b ADDR -t TOPIC -g GROUP -out FILE [-commit-interval 1s]
//	              [-pause-file F] [-stop-file F]
//	                                              a consumer group member: writes "partition
//	                                              offset key" per record read to FILE and
//	                                              commits every interval (FILE flushed first);
//	                                              committing pauses while the pause file exists
//	                                              or after SIGUSR1 (again: resumes); a progress
//	                                              line each second on stderr with its lag (from
//	                                              the fetches' high watermarks); runs until
//	                                              SIGTERM/SIGINT or the stop file, then "group
//	                                              consumed N max_lag_records L max_lag_ms M
//	                                              commits C ..." (L: records behind the high
//	                                              watermarks of the fetches and of ListOffsets
//	                                              each second, M: the oldest record's age when
//	                                              read; both from the first time the member
//	                                              caught up on, not the backlog it started with)
//	kclient lag -b ADDR -t TOPIC -g GROUP         the group's committed lag: "partition P end E
//	                                              committed C lag L" each, then "lag total N"
//	kclient isr -b ADDR -t TOPIC -metrics URL,URL -out FILE [-min-isr 2] [-interval 1s]
//	            [-stop-file F]
//	                                              samples every interval the brokers' replication
//	                                              gauges and quorum leader (/metrics) and the
//	                                              topic's ISR
//	                                              (Metadata) into FILE, one line each, until
//	                                              SIGTERM/SIGINT or F appears; then a summary
//	kclient touch|rm|cat FILE                     file helpers (the image has no shell)
//	kclient consume -b ADDR -t TOPIC -n N [-timeout 60s]
//	                                              reads every partition from the start until N
//	                                              records came back; prints each value, then
//	                                              "consumed N"; fails after the timeout
//
// Every mode connects as the KCLIENT_* environment says (TLS, mutual TLS, SASL SCRAM or
// PLAIN: KCLIENT_SECURITY_PROTOCOL, KCLIENT_SASL_MECHANISM, KCLIENT_SASL_USERNAME,
// KCLIENT_SASL_PASSWORD, KCLIENT_TLS_CA, KCLIENT_TLS_CERT, KCLIENT_TLS_KEY; see security.go).
//
// Exit status: 0 ok, 1 failure (the reason on stderr), 2 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "touch", "rm", "cat":
		if err := fileCmd(cmd, args); err != nil {
			fmt.Fprintf(os.Stderr, "kclient %s: %v\n", cmd, err)
			os.Exit(1)
		}
		return
	}
	if cmd == "sleep" {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		return
	}
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	bootstrap := fs.String("b", "", "bootstrap host:port (comma-separated)")
	topic := fs.String("t", "", "topic")
	n := fs.Int("n", 0, "number of records")
	prefix := fs.String("prefix", "rec", "value prefix of produced records")
	keys := fs.String("config", "", "comma-separated topic config keys to print")
	timeout := fs.Duration("timeout", 60*time.Second, "overall deadline")
	rate := fs.Int("rate", 200, "load: records per second")
	size := fs.Int("size", 1024, "load: value bytes")
	duration := fs.Duration("duration", 0, "load: how long (0: until SIGTERM or SIGINT)")
	acksFile := fs.String("acks", "", "load: file for one \"partition offset value\" line per acknowledgement")
	produceMax := fs.Int("produce-max-version", -1, "load: highest Produce version to use (-1: the newest both sides know)")
	stopFile := fs.String("stop-file", "", "load, group, isr: stop when this file exists")
	groupName := fs.String("g", "", "group, lag: consumer group")
	out := fs.String("out", "", "group, isr: output file")
	pauseFile := fs.String("pause-file", "", "group: do not commit while this file exists")
	commitEvery := fs.Duration("commit-interval", time.Second, "group: time between commits")
	metrics := fs.String("metrics", "", "isr: comma-separated /metrics URLs of the brokers")
	minISR := fs.Int("min-isr", 2, "isr: the topic's min.insync.replicas")
	interval := fs.Duration("interval", time.Second, "isr: time between samples")
	_ = fs.Parse(args)
	if *bootstrap == "" || (*topic == "" && cmd != "brokers" && cmd != "assignment") {
		usage()
	}
	if cmd == "load" || cmd == "group" || cmd == "isr" {
		*timeout = 24 * time.Hour
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(*bootstrap, ",")...),
		kgo.ClientID("samsa-e2e-kclient"),
		kgo.RequestTimeoutOverhead(5 * time.Second),
	}
	sec, err := securityOpts()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kclient %s: %v\n", cmd, err)
		os.Exit(2)
	}
	opts = append(opts, sec...)
	switch cmd {
	case "describe":
		err = describe(ctx, opts, *topic, *keys)
	case "absent":
		err = absent(ctx, opts, *topic)
	case "brokers":
		err = brokers(ctx, opts)
	case "assignment":
		err = assignment(ctx, opts, *topic)
	case "produce":
		err = produce(ctx, opts, *topic, *n, *prefix)
	case "consume":
		err = consume(ctx, opts, *topic, *n)
	case "load":
		err = load(ctx, opts, loadArgs{*topic, *rate, *size, *duration, *acksFile, *produceMax, *stopFile})
	case "group":
		err = group(ctx, opts, groupArgs{*topic, *groupName, *out, *stopFile, *pauseFile, *commitEvery})
	case "lag":
		err = lag(ctx, opts, *topic, *groupName)
	case "isr":
		var urls []string
		if *metrics != "" {
			urls = strings.Split(*metrics, ",")
		}
		err = isr(ctx, opts, isrArgs{*topic, urls, *out, *stopFile, *minISR, *interval})
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kclient %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kclient sleep | touch|rm|cat FILE | brokers -b BOOTSTRAP | assignment -b BOOTSTRAP [-t TOPIC,TOPIC] | {describe|absent|produce|consume|load|group|lag|isr} -b BOOTSTRAP -t TOPIC [-n N] [-prefix P] [-config K,K] [-timeout D] [-rate R -size B -duration D -acks FILE -produce-max-version V -stop-file F] [-g GROUP -out FILE -pause-file F -commit-interval D] [-metrics URL,URL -min-isr N -interval D]")
	os.Exit(2)
}

func admin(opts []kgo.Opt) (*kadm.Client, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

func brokers(ctx context.Context, opts []kgo.Opt) error {
	adm, err := admin(opts)
	if err != nil {
		return err
	}
	defer adm.Close()
	list, err := adm.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].NodeID < list[j].NodeID })
	for _, b := range list {
		rack := "-"
		if b.Rack != nil {
			rack = *b.Rack
		}
		fmt.Printf("broker %d %s:%d rack %s\n", b.NodeID, b.Host, b.Port, rack)
	}
	return nil
}

func describe(ctx context.Context, opts []kgo.Opt, topic, keys string) error {
	adm, err := admin(opts)
	if err != nil {
		return err
	}
	defer adm.Close()
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	d, ok := topics[topic]
	if !ok {
		return fmt.Errorf("metadata: no topic %s in the answer", topic)
	}
	if d.Err != nil {
		return fmt.Errorf("metadata of %s: %w", topic, d.Err)
	}
	parts := d.Partitions.Sorted()
	minReplicas := -1
	for _, p := range parts {
		if minReplicas < 0 || len(p.Replicas) < minReplicas {
			minReplicas = len(p.Replicas)
		}
	}
	fmt.Printf("partitions %d\n", len(parts))
	fmt.Printf("replicas %d\n", minReplicas)
	for _, p := range parts {
		fmt.Printf("partition %d leader %d replicas %v isr %v\n", p.Partition, p.Leader, p.Replicas, p.ISR)
	}
	if keys == "" {
		return nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe configs: %w", err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return fmt.Errorf("describe configs of %s: %w", topic, err)
	}
	if rc.Err != nil {
		return fmt.Errorf("describe configs of %s: %w %s", topic, rc.Err, rc.ErrMessage)
	}
	values := map[string]string{}
	for _, c := range rc.Configs {
		values[c.Key] = c.MaybeValue()
	}
	for _, k := range strings.Split(keys, ",") {
		v, ok := values[k]
		if !ok {
			v = "<absent>"
		}
		fmt.Printf("config %s=%s\n", k, v)
	}
	return nil
}

func absent(ctx context.Context, opts []kgo.Opt, topic string) error {
	adm, err := admin(opts)
	if err != nil {
		return err
	}
	defer adm.Close()
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	d, ok := topics[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		fmt.Printf("topic %s is absent\n", topic)
		return nil
	}
	if d.Err != nil {
		return fmt.Errorf("metadata of %s: %w", topic, d.Err)
	}
	return fmt.Errorf("topic %s still exists with %d partitions", topic, len(d.Partitions))
}

func produce(ctx context.Context, opts []kgo.Opt, topic string, n int, prefix string) error {
	if n <= 0 {
		return errors.New("-n must be positive")
	}
	// Plain acks=all producer; idempotence is the broker's own tests' business.
	cl, err := kgo.NewClient(append(opts,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := fmt.Sprintf("%s-%d", prefix, i)
		recs[i] = &kgo.Record{Key: []byte(v), Value: []byte(v)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	parts := map[int32]int{}
	for _, r := range recs {
		parts[r.Partition]++
	}
	fmt.Printf("produced %d (over %d partitions)\n", n, len(parts))
	return nil
}

func consume(ctx context.Context, opts []kgo.Opt, topic string, n int) error {
	if n <= 0 {
		return errors.New("-n must be positive")
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var values []string
	for len(values) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("consumed %d of %d records before the deadline", len(values), n)
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
		})
		if ferr != nil && !kerr.IsRetriable(errors.Unwrap(ferr)) {
			return ferr
		}
		fetches.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	sort.Strings(values)
	for _, v := range values {
		fmt.Println(v)
	}
	fmt.Printf("consumed %d\n", len(values))
	return nil
}
