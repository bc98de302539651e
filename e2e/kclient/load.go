package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

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
}

// loadStats is what the delivery callbacks record: counts, and the longest gap between two
// acknowledgements while records were outstanding.
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
	s.acked++
	if gap := now.Sub(s.lastAck); gap > s.maxPause {
		s.maxPause, s.maxAt = gap, now.Sub(s.start)
	}
	s.lastAck = now
	if s.acks != nil {
		fmt.Fprintf(s.acks, "%d %d %s\n", r.Partition, r.Offset, r.Key)
	}
}

// load runs an idempotent acks=all producer at a steady rate and reports the longest pause
// between two acknowledgements: the figure a rolling restart must keep small.
func load(ctx context.Context, opts []kgo.Opt, a loadArgs) error {
	if a.rate <= 0 || a.size < 0 {
		return errors.New("-rate must be positive and -size not negative")
	}
	extra := []kgo.Opt{
		kgo.DefaultProduceTopic(a.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(5 * time.Minute),
		kgo.AllowAutoTopicCreation(),
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
			fmt.Fprintf(os.Stderr, "load t=%.0fs sent=%d acked=%d errors=%d longest_pause_ms=%d\n",
				time.Since(st.start).Seconds(), sent, st.acked, st.errors, st.maxPause.Milliseconds())
			st.mu.Unlock()
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
	fmt.Printf("load sent %d acked %d errors %d longest_pause_ms %d at %.1fs\n",
		sent, st.acked, st.errors, st.maxPause.Milliseconds(), st.maxAt.Seconds())
	if st.errors > 0 {
		return fmt.Errorf("%d records failed, first: %v", st.errors, st.firstErrs)
	}
	return nil
}
