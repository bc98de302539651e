package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// assignment prints the replica assignment of every topic the brokers know, internal topics
// (__consumer_offsets) included, from one Metadata request; with topics (-t T,T), only those:
//
//	TOPIC PARTITION LEADER REPLICA... isr ISR...
//
// one line per partition, by topic then partition. The replicas are in Metadata's order (the
// first is the preferred leader); LEADER is -1 when the partition has none. A topic the
// answer names with an error fails the command (a partition error does not: its leader is -1).
// The roll test's scale scenarios read it (e2e/roll-test.sh).
func assignment(ctx context.Context, opts []kgo.Opt, topics string) error {
	adm, err := admin(opts)
	if err != nil {
		return err
	}
	defer adm.Close()
	var names []string
	if topics != "" {
		names = strings.Split(topics, ",")
	}
	details, err := adm.ListTopicsWithInternal(ctx, names...)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	sorted := make([]string, 0, len(details))
	for name, d := range details {
		if d.Err != nil {
			return fmt.Errorf("metadata of %s: %w", name, d.Err)
		}
		sorted = append(sorted, name)
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, name := range sorted {
		for _, p := range details[name].Partitions.Sorted() {
			leader := p.Leader
			if p.Err != nil {
				leader = -1
			}
			fmt.Fprintf(&b, "%s %d %d %s isr %s\n", name, p.Partition, leader, ids(p.Replicas), ids(p.ISR))
		}
	}
	fmt.Print(b.String())
	return nil
}

// ids: "1 2 3", or "-" for none.
func ids(list []int32) string {
	if len(list) == 0 {
		return "-"
	}
	s := make([]string, len(list))
	for i, id := range list {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, " ")
}
