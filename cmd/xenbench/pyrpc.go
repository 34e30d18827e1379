package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// pythonServer is the baseline of figure 7: the standard library's
// SimpleXMLRPCServer with ThreadingMixIn, HTTP/1.1 keep-alive, answering
// echo and list_vms (the agent's own answer, loaded once).
const pythonServer = `import sys, xmlrpc.client
from socketserver import ThreadingMixIn
from xmlrpc.server import SimpleXMLRPCServer, SimpleXMLRPCRequestHandler

class Handler(SimpleXMLRPCRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the agent
    rpc_paths = ()                 # any path

class Server(ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True

with open(sys.argv[1], "rb") as f:
    vms = xmlrpc.client.loads(f.read())[0][0]
srv = Server(("127.0.0.1", 0), requestHandler=Handler, logRequests=False)
srv.register_function(lambda msg: msg, "echo")
srv.register_function(lambda: vms, "list_vms")
print("listening on", srv.server_address[1], flush=True)
srv.serve_forever()
`

var pyListenRx = regexp.MustCompile(`^listening on (\d+)$`)

// startPythonRPC starts the Python baseline server, under the command
// prefix pin (taskset) when given; listXML is the agent's list_vms
// response, which it returns as its own.
func startPythonRPC(ctx context.Context, dir string, listXML []byte, pin []string) (rpcServer, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return rpcServer{}, fmt.Errorf("python3 not installed (Debian: apt-get install python3)")
	}
	script := filepath.Join(dir, "xmlrpc_baseline.py")
	data := filepath.Join(dir, "list_vms.xml")
	if err := os.WriteFile(script, []byte(pythonServer), 0o644); err != nil {
		return rpcServer{}, err
	}
	if err := os.WriteFile(data, listXML, 0o644); err != nil {
		return rpcServer{}, err
	}
	args := append(slices.Clone(pin), py, script, data)
	cmd := exec.Command(args[0], args[1:]...)
	l, err := startListener(ctx, cmd, "the Python server", filepath.Join(dir, "python.log"), pyListenRx, 30*time.Second, 3*time.Second)
	if err != nil {
		return rpcServer{}, err
	}
	return rpcServer{url: fmt.Sprintf("http://127.0.0.1:%d/RPC2", l.port), pid: l.pid, stop: l.stop}, nil
}
