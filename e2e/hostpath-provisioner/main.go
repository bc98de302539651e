// Command hostpath-provisioner is the dynamic volume provisioner of the e2e cluster
// (e2e/cluster). It runs on the node's host, next to the kubelet, with the cluster's
// kubeconfig. The controller work (watching claims, creating, binding and deleting
// PersistentVolumes, events) is done by sigs.k8s.io/sig-storage-lib-external-provisioner; this
// program only makes one directory per volume, world-writable (0777) so that non-root pods can
// write it whatever their UID and fsGroup, and returns a hostPath PersistentVolume pinned to
// this node. Deleting the volume (reclaim policy Delete) removes the directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

const (
	libModule = "sigs.k8s.io/sig-storage-lib-external-provisioner/v13"
	// nodeAnnotation names the node whose directory backs the volume; Delete ignores volumes
	// of other nodes.
	nodeAnnotation = "samsa.dev/hostpath-node"
)

type hostPath struct {
	root string // volumes are root/<PV name>
	node string
}

// dirOf returns the directory of PV name, refusing anything that is not a direct child of root.
func (h *hostPath) dirOf(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return "", fmt.Errorf("bad volume name %q", name)
	}
	return filepath.Join(h.root, name), nil
}

func (h *hostPath) Provision(ctx context.Context, o controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	if o.PVC.Spec.Selector != nil {
		return nil, controller.ProvisioningFinished, errors.New("claims with a selector are not supported")
	}
	if o.SelectedNodeName != "" && o.SelectedNodeName != h.node {
		return nil, controller.ProvisioningFinished,
			fmt.Errorf("the scheduler chose node %s, this provisioner serves node %s", o.SelectedNodeName, h.node)
	}
	dir, err := h.dirOf(o.PVName)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	// Mkdir is subject to the umask; chmod is not.
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, controller.ProvisioningNoChange, err
	}
	klog.FromContext(ctx).Info("volume directory ready", "PVC", klog.KObj(o.PVC), "PV", o.PVName, "dir", dir)

	reclaim := v1.PersistentVolumeReclaimDelete
	if o.StorageClass.ReclaimPolicy != nil {
		reclaim = *o.StorageClass.ReclaimPolicy
	}
	dirType := v1.HostPathDirectory
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        o.PVName,
			Annotations: map[string]string{nodeAnnotation: h.node},
		},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   o.PVC.Spec.AccessModes,
			VolumeMode:                    o.PVC.Spec.VolumeMode,
			Capacity:                      v1.ResourceList{v1.ResourceStorage: o.PVC.Spec.Resources.Requests[v1.ResourceStorage]},
			PersistentVolumeSource: v1.PersistentVolumeSource{
				HostPath: &v1.HostPathVolumeSource{Path: dir, Type: &dirType},
			},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{
				NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{
					Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{h.node},
				}}}},
			}},
		},
	}, controller.ProvisioningFinished, nil
}

func (h *hostPath) Delete(ctx context.Context, pv *v1.PersistentVolume) error {
	if pv.Annotations[nodeAnnotation] != h.node {
		return &controller.IgnoredError{Reason: fmt.Sprintf("volume %s is not on node %s", pv.Name, h.node)}
	}
	dir, err := h.dirOf(pv.Name)
	if err != nil {
		return err
	}
	if pv.Spec.HostPath == nil || filepath.Clean(pv.Spec.HostPath.Path) != dir {
		return fmt.Errorf("volume %s: its hostPath is not %s", pv.Name, dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("volume directory removed", "PV", pv.Name, "dir", dir)
	return nil
}

func libVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == libModule {
				return d.Version
			}
		}
	}
	return "unknown"
}

func main() {
	klog.InitFlags(nil)
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default $KUBECONFIG; empty: in-cluster config)")
	name := flag.String("provisioner-name", "samsa.dev/hostpath", "the StorageClasses' provisioner field this program serves")
	root := flag.String("dir", "/var/tmp/samsa-e2e/volumes", "directory holding one subdirectory per volume")
	node := flag.String("node-name", os.Getenv("NODE_NAME"), "this node's name, the volumes' node affinity (default $NODE_NAME)")
	metrics := flag.String("metrics-address", "", "host:port to serve the controller's /metrics on (default: none)")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()

	if *version {
		fmt.Printf("hostpath-provisioner (%s %s)\n", libModule, libVersion())
		return
	}
	if *node == "" {
		klog.Fatal("--node-name (or NODE_NAME) is required")
	}
	if !filepath.IsAbs(*root) {
		klog.Fatalf("--dir must be an absolute path, got %q", *root)
	}
	if err := os.MkdirAll(*root, 0o755); err != nil {
		klog.Fatalf("creating %s: %v", *root, err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("kubeconfig: %v", err)
	}
	cfg.UserAgent = "samsa-e2e-hostpath-provisioner"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		klog.Fatalf("client: %v", err)
	}

	// One instance per node and no Pod of its own: no leader election.
	opts := []func(*controller.ProvisionController) error{controller.LeaderElection(false)}
	if *metrics != "" {
		host, port, err := net.SplitHostPort(*metrics)
		if err != nil {
			klog.Fatalf("--metrics-address: %v", err)
		}
		p, err := strconv.ParseInt(port, 10, 32)
		if err != nil || p <= 0 {
			klog.Fatalf("--metrics-address: bad port %q", port)
		}
		opts = append(opts, controller.MetricsAddress(host), controller.MetricsPort(int32(p)))
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	klog.InfoS("starting", "provisioner", *name, "node", *node, "dir", *root, "library", libModule+" "+libVersion())
	pc := controller.NewProvisionController(ctx, client, *name, &hostPath{root: filepath.Clean(*root), node: *node}, opts...)
	pc.Run(ctx)
	klog.InfoS("stopped")
}
