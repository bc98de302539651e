package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

type loadArgs struct {
	topic      string
	rate       int
	size       int
	duration   time.Duration
	acksFile   string
	produceMax int
	stopFile   string
}

// loadStats is what the delivery callbacks record: counts, and the longest gap between two
// acknowledgements (from the first one on) while records were outstanding.
type loadStats struct {
	mu        sync.Mutex
	start     time.Time
	acked     int
	errors    int
	firstErrs []string
	lastAck   time.Time
	maxPause  time.Duration
	maxAt     time.Duration
	acks      *bufio.Writer
}

func (s *loadStats) ack(r *kgo.Record, err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errors++
		if len(s.firstErrs) < 5 {
			s.firstErrs = append(s.firstErrs, err.Error())
		}
		return
	}
	// The first acknowledgement only starts the clock: the client's start-up is no pause.
	if gap := now.Sub(s.lastAck); s.acked > 0 && gap > s.maxPause {
		s.maxPause, s.maxAt = gap, now.Sub(s.start)
	}
	s.acked++
	s.lastAck = now
	if s.acks != nil {
		fmt.Fprintf(s.acks, "%d %d %s\n", r.Partition, r.Offset, r.Key)
	}
}

// retryLog is the client's logger: it prints nothing, and counts the produce errors the
// client retried by their Kafka error name (NOT_ENOUGH_REPLICAS, NOT_LEADER_OR_FOLLOWER...),
// "request" for a produce request that failed as a whole (connection refused or cut).
type retryLog struct {
	mu     sync.Mutex
	counts map[string]int
}

// Level is debug: one of the retries ("retrying without a metadata update") is logged at debug.
func (l *retryLog) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l *retryLog) Log(_ kgo.LogLevel, msg string, keyvals ...any) {
	var name string
	switch msg {
	case "batch in a produce request failed":
		name = "batch"
		for i := 0; i+1 < len(keyvals); i += 2 {
			if keyvals[i] != "err" {
				continue
			}
			var ke *kerr.Error
			if err, ok := keyvals[i+1].(error); ok && errors.As(err, &ke) {
				name = ke.Message
			}
		}
	case "produce request failed, triggering metadata update",
		"produce request failed with a retryable error, retrying without a metadata update",
		"random error while producing, requeueing unattempted request":
		name = "request"
	default:
		return
	}
	l.mu.Lock()
	l.counts[name]++
	l.mu.Unlock()
}

// String is "NAME=N,NAME=N" by name, or "none".
func (l *retryLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.counts) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range l.counts {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// exists reports whether path names a file (false for "").
func exists(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

// load runs an idempotent acks=all producer at a steady rate and reports the longest pause
// between two acknowledgements: the figure a rolling restart must keep small.
func load(ctx context.Context, opts []kgo.Opt, a loadArgs) error {
	if a.rate <= 0 || a.size < 0 {
		return errors.New("-rate must be positive and -size not negative")
	}
	retries := &retryLog{counts: map[string]int{}}
	extra := []kgo.Opt{
		kgo.DefaultProduceTopic(a.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(5 * time.Minute),
		kgo.AllowAutoTopicCreation(),
		kgo.WithLogger(retries),
	}
	if a.produceMax >= 0 {
		v := kversion.Stable()
		v.SetMaxKeyVersion(int16(kmsg.Produce), int16(a.produceMax))
		extra = append(extra, kgo.MaxVersions(v))
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	st := &loadStats{start: time.Now()}
	st.lastAck = st.start
	if a.acksFile != "" {
		f, err := os.Create(a.acksFile)
		if err != nil {
			return err
		}
		defer f.Close()
		st.acks = bufio.NewWriter(f)
		defer st.acks.Flush()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	var until <-chan time.Time
	if a.duration > 0 {
		until = time.After(a.duration)
	}
	value := make([]byte, a.size)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	report := time.NewTicker(time.Second)
	defer report.Stop()
	sent := 0
	per := float64(a.rate) / 100.0
	owed := 0.0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-sig:
			break loop
		case <-until:
			break loop
		case <-report.C:
			st.mu.Lock()
			fmt.Fprintf(os.Stderr, "load t=%.0fs sent=%d acked=%d errors=%d longest_pause_ms=%d retries=%s\n",
				time.Since(st.start).Seconds(), sent, st.acked, st.errors, st.maxPause.Milliseconds(), retries)
			st.mu.Unlock()
			if exists(a.stopFile) {
				break loop
			}
		case <-tick.C:
			owed += per
			for ; owed >= 1; owed-- {
				key := fmt.Sprintf("%d", sent)
				cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: value}, st.ack)
				sent++
			}
		}
	}
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.Flush(fctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	fmt.Printf("load sent %d acked %d errors %d longest_pause_ms %d at %.1fs retries %s started %.3f\n",
		sent, st.acked, st.errors, st.maxPause.Milliseconds(), st.maxAt.Seconds(), retries,
		float64(st.start.UnixMilli())/1000)
	if st.errors > 0 {
		return fmt.Errorf("%d records failed, first: %v", st.errors, st.firstErrs)
	}
	return nil
}
