package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type groupArgs struct {
	topic       string
	group       string
	out         string
	stopFile    string
	pauseFile   string
	commitEvery time.Duration
}

// groupState is what the member knows of its partitions: the next offset it will read and
// the high watermark of the last fetch, per assigned partition.
type groupState struct {
	mu          sync.Mutex
	w           *bufio.Writer
	next        map[int32]int64
	hw          map[int32]int64
	consumed    int
	maxLag      int64
	maxLagTime  time.Duration
	commits     int
	commitErrs  int
	fetchErrs   int
	rebalances  int
	lastErr     string
	commitPause bool
	// caughtUp: the member has read up to the high watermarks once; the lag maxima count
	// from then on (not the backlog it found at the start).
	caughtUp bool
}

// lag is the records between what this member read and the high watermarks it last saw, over
// its assigned partitions. Called with mu held.
func (s *groupState) lag() int64 {
	var total int64
	for p, hw := range s.hw {
		if n, ok := s.next[p]; ok && hw > n {
			total += hw - n
		}
	}
	return total
}

func (s *groupState) partitions() []int32 {
	var ps []int32
	for p := range s.hw {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// group is a consumer group member: it reads TOPIC from the group's committed offsets (the
// start when there are none), writes "partition offset key" for every record it reads to
// -out, and commits what it wrote every -commit-interval (flushing -out first, so a committed
// offset always has its records in the file). Committing pauses while -pause-file exists, or
// after a SIGUSR1 (a second one resumes); reading goes on. It stops on SIGTERM/SIGINT or when
// -stop-file appears: a last commit (unless paused), then it leaves the group.
func group(ctx context.Context, opts []kgo.Opt, a groupArgs) error {
	if a.group == "" || a.out == "" {
		return errors.New("-g and -out are required")
	}
	f, err := os.Create(a.out)
	if err != nil {
		return err
	}
	defer f.Close()
	st := &groupState{w: bufio.NewWriter(f), next: map[int32]int64{}, hw: map[int32]int64{}}
	var toggled atomic.Bool
	paused := func() bool { return toggled.Load() || exists(a.pauseFile) }

	var cl *kgo.Client
	// commit flushes the records file, then commits every offset polled so far.
	commit := func(ctx context.Context) {
		st.mu.Lock()
		if err := st.w.Flush(); err != nil {
			st.lastErr = err.Error()
		}
		st.mu.Unlock()
		err := cl.CommitUncommittedOffsets(ctx)
		st.mu.Lock()
		if err != nil {
			st.commitErrs++
			st.lastErr = err.Error()
		} else {
			st.commits++
		}
		st.mu.Unlock()
	}
	forget := func(lost map[string][]int32) {
		st.mu.Lock()
		defer st.mu.Unlock()
		for _, ps := range lost {
			for _, p := range ps {
				delete(st.hw, p)
				delete(st.next, p)
			}
		}
	}
	cl, err = kgo.NewClient(append(opts,
		kgo.ConsumerGroup(a.group),
		kgo.ConsumeTopics(a.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, got map[string][]int32) {
			st.mu.Lock()
			st.rebalances++
			st.mu.Unlock()
			fmt.Fprintf(os.Stderr, "group assigned %v\n", got[a.topic])
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
			if !paused() {
				commit(ctx)
			}
			forget(lost)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			forget(lost)
		}),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	start := time.Now()
	lastCommit, lastReport := start, start
loop:
	for {
		select {
		case s := <-sig:
			if s != syscall.SIGUSR1 {
				break loop
			}
			toggled.Store(!toggled.Load())
			fmt.Fprintf(os.Stderr, "group SIGUSR1: committing paused=%v\n", paused())
		default:
		}
		if exists(a.stopFile) || ctx.Err() != nil {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pctx)
		cancel()
		if fetches.IsClientClosed() {
			break
		}
		now := time.Now()
		st.mu.Lock()
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				st.fetchErrs++
				st.lastErr = err.Error()
			}
		})
		var oldest time.Duration
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if fp.Err != nil {
				return
			}
			for _, r := range fp.Records {
				fmt.Fprintf(st.w, "%d %d %s\n", r.Partition, r.Offset, r.Key)
				st.consumed++
				st.next[r.Partition] = r.Offset + 1
				oldest = max(oldest, now.Sub(r.Timestamp))
			}
			if len(fp.Records) > 0 || fp.HighWatermark > 0 {
				st.hw[fp.Partition] = fp.HighWatermark
			}
		})
		if st.caughtUp {
			st.maxLag = max(st.maxLag, st.lag())
			st.maxLagTime = max(st.maxLagTime, oldest)
		} else if st.consumed > 0 && st.lag() == 0 {
			st.caughtUp = true
		}
		p := paused()
		if p != st.commitPause {
			st.commitPause = p
			fmt.Fprintf(os.Stderr, "group committing paused=%v\n", p)
		}
		st.mu.Unlock()
		cl.AllowRebalance()
		if now.Sub(lastCommit) >= a.commitEvery && !p {
			lastCommit = now
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			commit(cctx)
			cancel()
		}
		if now.Sub(lastReport) >= time.Second {
			lastReport = now
			// The high watermarks of partitions whose fetches stall (a leader moving) are
			// only as fresh as their last fetch: ask for the end offsets too.
			lctx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
			ends, err := adm.ListEndOffsets(lctx, a.topic)
			cancel()
			st.mu.Lock()
			if err == nil {
				ends.Each(func(o kadm.ListedOffset) {
					if _, mine := st.hw[o.Partition]; mine && o.Err == nil && o.Offset > st.hw[o.Partition] {
						st.hw[o.Partition] = o.Offset
					}
				})
				if st.caughtUp {
					st.maxLag = max(st.maxLag, st.lag())
				}
			}
			fmt.Fprintf(os.Stderr, "group t=%.0fs consumed=%d lag=%d max_lag_records=%d max_lag_ms=%d commits=%d commit_errors=%d fetch_errors=%d assignments=%d paused=%v caught_up=%v partitions=%v\n",
				now.Sub(start).Seconds(), st.consumed, st.lag(), st.maxLag, st.maxLagTime.Milliseconds(),
				st.commits, st.commitErrs, st.fetchErrs, st.rebalances, p, st.caughtUp, st.partitions())
			st.mu.Unlock()
		}
	}
	if !paused() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		commit(cctx)
		cancel()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.w.Flush(); err != nil {
		return err
	}
	fmt.Printf("group consumed %d max_lag_records %d max_lag_ms %d commits %d commit_errors %d fetch_errors %d assignments %d\n",
		st.consumed, st.maxLag, st.maxLagTime.Milliseconds(), st.commits, st.commitErrs, st.fetchErrs, st.rebalances)
	if st.lastErr != "" {
		fmt.Printf("group last error: %s\n", st.lastErr)
	}
	return nil
}

// lag prints the committed lag of GROUP on TOPIC: "partition P end E committed C lag L" per
// partition (committed -1: nothing committed), then "lag total N".
func lag(ctx context.Context, opts []kgo.Opt, topic, group string) error {
	if group == "" {
		return errors.New("-g is required")
	}
	adm, err := admin(opts)
	if err != nil {
		return err
	}
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	committed, err := adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil {
		return fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	var total int64
	var ps []int32
	for p := range ends[topic] {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	for _, p := range ps {
		end := ends[topic][p].Offset
		c := int64(-1)
		if o, ok := committed.Lookup(topic, p); ok && o.Err == nil {
			c = o.At
		}
		l := end
		if c >= 0 {
			l = end - c
		}
		total += l
		fmt.Printf("partition %d end %d committed %d lag %d\n", p, end, c, l)
	}
	fmt.Printf("lag total %d\n", total)
	return nil
}
