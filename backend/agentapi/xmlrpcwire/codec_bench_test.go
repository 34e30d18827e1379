package xmlrpcwire

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/kolo/xmlrpc"
)

// benchDomain has the shape of the agent's list_vms rows (agentapi.Domain),
// which this package does not import.
type benchDomain struct {
	UUID      string  `xmlrpc:"uuid"`
	Name      string  `xmlrpc:"name"`
	DomID     int64   `xmlrpc:"domid"`
	State     string  `xmlrpc:"state"`
	MemoryMiB int64   `xmlrpc:"memory_mib"`
	VCPUs     int64   `xmlrpc:"vcpus"`
	CPUTimeS  float64 `xmlrpc:"cpu_time_s"`
	RepoID    string  `xmlrpc:"repo_id"`
}

// benchDomains is a list_vms result of 20 running domains, as in figure 7
// of make bench.
func benchDomains() []benchDomain {
	out := make([]benchDomain, 20)
	for i := range out {
		id := fmt.Sprintf("0004fb00000600000000000000%06d", i)
		out[i] = benchDomain{UUID: id, Name: id, DomID: int64(i + 1), State: "running", MemoryMiB: 512,
			VCPUs: 1, CPUTimeS: 12.5 + float64(i)/3, RepoID: "0004fb00000300001111111111111111"}
	}
	return out
}

// benchCalls are calls as clients send them: figure 7's echo and list_vms,
// and a create_vm as the manager (kolo/xmlrpc) encodes it.
func benchCalls(b *testing.B) map[string][]byte {
	createVM, err := xmlrpc.EncodeMethodCall("create_vm", "0004fb00000300001111111111111111", "0004fb00000600000000000000000001",
		map[string]any{"name": "0004fb00000600000000000000000001", "uuid": "0004fb00000600000000000000000001",
			"OVM_simple_name": "web 1", "OVM_description": "a \"quoted\" <description>", "OVM_domain_type": "XEN_HVM",
			"memory": 512, "maxmem": 1024, "vcpus": 1, "maxvcpus": 2,
			"disk": []string{"file:/OVS/Repositories/r/VirtualDisks/d1.img,xvda,w"}, "vif": []string{"mac=00:21:f6:00:00:01,bridge=xenbr0"},
			"boot": "c", "on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "restart"})
	if err != nil {
		b.Fatal(err)
	}
	return map[string][]byte{
		"echo":      []byte(`<?xml version="1.0"?><methodCall><methodName>echo</methodName><params><param><value><string>xenbench</string></value></param></params></methodCall>`),
		"list_vms":  []byte(`<?xml version="1.0"?><methodCall><methodName>list_vms</methodName><params></params></methodCall>`),
		"create_vm": createVM,
	}
}

func BenchmarkDecodeCall(b *testing.B) {
	calls := benchCalls(b)
	for _, name := range []string{"echo", "list_vms", "create_vm"} {
		body := calls[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			r := bytes.NewReader(body)
			for b.Loop() {
				r.Reset(body)
				if _, _, err := DecodeCall(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeResponse(b *testing.B) {
	results := map[string]any{
		"echo":     "xenbench",
		"list_vms": benchDomains(),
		"map":      map[string]any{"name": "xen-1", "cpus": int64(64), "memory_mib": int64(262144), "tags": []string{"a", "b"}, "ok": true},
	}
	for _, name := range []string{"echo", "list_vms", "map"} {
		v := results[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := EncodeResponse(io.Discard, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
