# Typed into the source lab (rrlab up source/edge20.clab.yml --runtime netns) before the capture.
rrlab calicoctl apply -f - <<'YAML'
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  logSeverityScreen: Info
  reportingInterval: 0s
  bpfEnabled: false
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: legacy-pool
spec:
  cidr: 10.245.0.0/16
  blockSize: 26
  ipipMode: Always
  natOutgoing: true
  disabled: true
  nodeSelector: all()
YAML
rrlab kubectl label node onprem-01 onprem-02 onprem-03 topology.kubernetes.io/zone=dc1
rrlab kubectl label node cloud-01 cloud-02 topology.kubernetes.io/zone=eu-west-1a
rrlab kubectl annotate node cloud-03 ops.example.com/owner=team-net
# The capture:
rrlab kubectl get nodes -o yaml > kubectl-get-nodes.yaml
for k in nodes bgppeers bgpconfigurations ippools felixconfigurations; do rrlab calicoctl get $k -o yaml > calicoctl-get-$k.yaml; done
