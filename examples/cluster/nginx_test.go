package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// documentedNginx returns the nginx config in main.go's doc comment, with
// the nodes' and nginx's ports replaced.
func documentedNginx(t *testing.T, listen int, nodes []string) string {
	t.Helper()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	var conf []string
	in := false
	for line := range strings.SplitSeq(string(src), "\n") {
		body, ok := strings.CutPrefix(line, "//\t")
		if strings.HasPrefix(body, "upstream laf {") {
			in = true
		}
		if !in {
			continue
		}
		if !ok {
			break
		}
		conf = append(conf, body)
	}
	if len(conf) == 0 {
		t.Fatal("no nginx config in main.go's doc comment")
	}
	s := strings.Join(conf, "\n")
	for i, port := range []string{"8081", "8082", "8083"} {
		s = strings.ReplaceAll(s, "127.0.0.1:"+port, nodes[i%len(nodes)])
	}
	return strings.Replace(s, "listen 8080;", "listen 127.0.0.1:"+strconv.Itoa(listen)+";", 1)
}

// TestNginx runs the documented nginx config in front of three nodes and
// checks B1: a socket opened by a page served through nginx (Origin
// http://127.0.0.1:PORT, as a browser sends it) is accepted, which
// `proxy_set_header Host $host` refused with 403; and a push through
// nginx reaches it whichever node holds it.
func TestNginx(t *testing.T) {
	path, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not in PATH (apt-get install -y nginx)")
	}
	natsURL := startNATS(t)
	var nodes []string
	for _, name := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, strings.TrimPrefix(startNode(t, name, natsURL).URL, "http://"))
	}
	port := freePort(t)
	good := documentedNginx(t, port, nodes)
	if !strings.Contains(good, "proxy_set_header Host $http_host;") {
		t.Fatal("the documented config does not pass $http_host")
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	origin := http.Header{"Origin": {base}}

	runNginx(t, path, good, port)
	var clients []*client
	for i := range 3 {
		c := dialVia(t, base, "name=u"+strconv.Itoa(i), origin)
		if c == nil {
			t.Fatal("upgrade through nginx refused with the browser's Origin")
		}
		clients = append(clients, c)
	}
	eventually(t, "presence through nginx", func() bool { return getPresence(t, base+"/presence").Sockets == 3 })
	for _, c := range clients {
		if code := post(t, base+"/push?id="+c.id, "via nginx"); code != http.StatusAccepted {
			t.Fatalf("push through nginx: HTTP %d", code)
		}
		c.expect("raw", "via nginx")
	}
	if code := status(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz through nginx: %d", code)
	}
}

// TestNginxHostDropsPort shows what B1 was: with $host, nginx passes the
// host without its port, and the browser's Origin no longer matches.
func TestNginxHostDropsPort(t *testing.T) {
	path, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not in PATH (apt-get install -y nginx)")
	}
	hs := startNode(t, "n1", startNATS(t))
	port := freePort(t)
	bad := strings.Replace(documentedNginx(t, port, []string{strings.TrimPrefix(hs.URL, "http://")}),
		"proxy_set_header Host $http_host;", "proxy_set_header Host $host;", 1)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	runNginx(t, path, bad, port)
	if c := dialVia(t, base, "name=x", http.Header{"Origin": {base}}); c != nil {
		t.Fatal("with $host the upgrade was accepted; the test no longer shows B1")
	}
}

// runNginx runs nginx in the foreground with conf as its http block,
// until the test ends.
func runNginx(t *testing.T, path, conf string, port int) {
	t.Helper()
	dir := t.TempDir()
	full := "daemon off;\nmaster_process off;\npid " + filepath.Join(dir, "nginx.pid") + ";\nerror_log " + filepath.Join(dir, "error.log") + ";\n" +
		"events { worker_connections 256; }\nhttp {\naccess_log off;\nclient_body_temp_path " + dir + ";\nproxy_temp_path " + dir + ";\n" + conf + "\n}\n"
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(path, "-p", dir, "-c", cf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(timeout)
	for {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s\n%s", out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx not listening")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialVia opens a socket through base with header, or returns nil if the
// upgrade is refused with 403.
func dialVia(t *testing.T, base, query string, header http.Header) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws?"+query, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusForbidden {
			return nil
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	c := &client{t: t, ws: ws}
	w := c.read()
	c.id, c.node = w.ID, w.Node
	return c
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
