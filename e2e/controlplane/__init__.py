"""The local control plane (test tier 3): real kube-apiserver, etcd, kube-controller-manager,
kube-scheduler, kwok, Knative Serving and KServe, built from pinned Go modules (build.sh) and run
on loopback in a network namespace of their own (netns.py). See cluster.py."""
