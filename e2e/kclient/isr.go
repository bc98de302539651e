package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type isrArgs struct {
	topic    string
	metrics  []string
	out      string
	stopFile string
	minISR   int
	interval time.Duration
}

// brokerGauges are the broker-wide replication gauges of one /metrics answer.
type brokerGauges struct {
	ok                              bool
	underMinISR, underRepl, offline int64
	quorumLeader                    int64 // -1: not known
}

var isrGauges = []string{"samsa_under_min_isr_partitions", "samsa_under_replicated_partitions", "samsa_offline_partitions"}

func scrape(ctx context.Context, hc *http.Client, url string) brokerGauges {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return brokerGauges{}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return brokerGauges{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return brokerGauges{}
	}
	g := brokerGauges{quorumLeader: -1}
	seen := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case isrGauges[0]:
			g.underMinISR, seen = int64(v), seen+1
		case isrGauges[1]:
			g.underRepl, seen = int64(v), seen+1
		case isrGauges[2]:
			g.offline, seen = int64(v), seen+1
		case "samsa_quorum_leader_id":
			g.quorumLeader = int64(v)
		}
	}
	g.ok = sc.Err() == nil && seen == len(isrGauges)
	return g
}

// isr samples, every -interval until SIGTERM/SIGINT or -stop-file, the brokers' replication
// gauges from their /metrics (-metrics URL,URL...) and the topic's ISR from Metadata, one line
// per sample to -out:
//
//	t=UNIX.MS up=U/N under_min_isr=S under_replicated=S offline=S meta_min_isr=I
//	meta_under_min_isr=C meta_under_replicated=C meta_no_leader=C out_of_isr=IDS quorum_leader=ID
//
// (S: the sum over the brokers that answered; "-" when no broker answered or
// Metadata failed; IDS: the brokers missing from the ISR of some partition of the topic, "none"
// when every ISR is whole; ID: the metadata quorum's leader as most brokers' samsa_quorum_leader_id
// says), then a summary on stdout.
func isr(ctx context.Context, opts []kgo.Opt, a isrArgs) error {
	if len(a.metrics) == 0 || a.out == "" {
		return errors.New("-metrics and -out are required")
	}
	f, err := os.Create(a.out)
	if err != nil {
		return err
	}
	defer f.Close()
	adm, err := admin(opts)
	if err != nil {
		return err
	}
	defer adm.Close()
	hc := &http.Client{Timeout: a.interval * 8 / 10}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(a.interval)
	defer tick.Stop()
	var samples, noMeta, maxUnderMin, maxMetaUnderMin int64
	minMetaISR := int64(-1)
	for {
		select {
		case <-sig:
		case <-ctx.Done():
		case <-tick.C:
			if !exists(a.stopFile) {
				line, st := isrSample(ctx, hc, adm, a)
				if _, err := fmt.Fprintln(f, line); err != nil {
					return err
				}
				samples++
				if st.metaISR < 0 {
					noMeta++
				} else if minMetaISR < 0 || st.metaISR < minMetaISR {
					minMetaISR = st.metaISR
				}
				maxUnderMin = max(maxUnderMin, st.underMin)
				maxMetaUnderMin = max(maxMetaUnderMin, st.metaUnderMin)
				continue
			}
		}
		break
	}
	fmt.Printf("isr samples %d max_under_min_isr %d max_meta_under_min_isr %d min_meta_isr %d samples_without_metadata %d\n",
		samples, maxUnderMin, maxMetaUnderMin, minMetaISR, noMeta)
	return nil
}

type isrStats struct{ underMin, metaISR, metaUnderMin int64 }

func isrSample(ctx context.Context, hc *http.Client, adm *kadm.Client, a isrArgs) (string, isrStats) {
	now := time.Now()
	sctx, cancel := context.WithTimeout(ctx, a.interval*8/10)
	defer cancel()
	gauges := make([]brokerGauges, len(a.metrics))
	var wg sync.WaitGroup
	for i, u := range a.metrics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gauges[i] = scrape(sctx, hc, u)
		}()
	}
	st := isrStats{metaISR: -1}
	meta := "meta_min_isr=- meta_under_min_isr=- meta_under_replicated=- meta_no_leader=- out_of_isr=-"
	if topics, err := adm.ListTopics(sctx, a.topic); err == nil && topics[a.topic].Err == nil && len(topics[a.topic].Partitions) > 0 {
		var under, urp, noLeader int64
		outOfISR := map[int32]bool{}
		for _, p := range topics[a.topic].Partitions {
			for _, r := range p.Replicas {
				if !slices.Contains(p.ISR, r) {
					outOfISR[r] = true
				}
			}
			n := int64(len(p.ISR))
			if st.metaISR < 0 || n < st.metaISR {
				st.metaISR = n
			}
			if n < int64(a.minISR) {
				under++
			}
			if len(p.ISR) < len(p.Replicas) {
				urp++
			}
			if p.Leader < 0 {
				noLeader++
			}
		}
		st.metaUnderMin = under
		out := "none"
		if len(outOfISR) > 0 {
			ids := make([]string, 0, len(outOfISR))
			for r := range outOfISR {
				ids = append(ids, strconv.Itoa(int(r)))
			}
			slices.Sort(ids)
			out = strings.Join(ids, ",")
		}
		meta = fmt.Sprintf("meta_min_isr=%d meta_under_min_isr=%d meta_under_replicated=%d meta_no_leader=%d out_of_isr=%s",
			st.metaISR, under, urp, noLeader, out)
	}
	wg.Wait()
	up := 0
	// samsa_offline_partitions is reported by one broker (0 on the others): its sum is the
	// cluster's count.
	var sumMin, sumURP, sumOff int64
	votes := map[int64]int{}
	for _, g := range gauges {
		if !g.ok {
			continue
		}
		up++
		sumMin += g.underMinISR
		sumURP += g.underRepl
		sumOff += g.offline
		if g.quorumLeader >= 0 {
			votes[g.quorumLeader]++
		}
	}
	// The quorum leader most answering brokers name.
	leader, best := "-", 0
	for id, n := range votes {
		if n > best {
			leader, best = strconv.FormatInt(id, 10), n
		}
	}
	st.underMin = sumMin
	gaugeText := "under_min_isr=- under_replicated=- offline=-"
	if up > 0 {
		gaugeText = fmt.Sprintf("under_min_isr=%d under_replicated=%d offline=%d", sumMin, sumURP, sumOff)
	}
	return fmt.Sprintf("t=%.3f up=%d/%d %s %s quorum_leader=%s", float64(now.UnixMilli())/1000, up, len(a.metrics), gaugeText, meta, leader), st
}
