package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// nginxConf returns nginx.conf, the config the docs point to, with the
// nodes' addresses and nginx's port put in.
func nginxConf(t *testing.T, listen int, nodes []string) string {
	t.Helper()
	src, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for i, port := range []string{"8081", "8082", "8083"} {
		if !strings.Contains(s, "server 127.0.0.1:"+port+" ") {
			t.Fatalf("nginx.conf has no node at 127.0.0.1:%s", port)
		}
		s = strings.ReplaceAll(s, "127.0.0.1:"+port, nodes[i%len(nodes)])
	}
	if !strings.Contains(s, "listen 8080;") {
		t.Fatal("nginx.conf does not listen on 8080")
	}
	return strings.Replace(s, "listen 8080;", "listen 127.0.0.1:"+strconv.Itoa(listen)+";", 1)
}

// TestNginx runs nginx.conf in front of three nodes and
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
	good := nginxConf(t, port, nodes)
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
	bad := strings.Replace(nginxConf(t, port, []string{strings.TrimPrefix(hs.URL, "http://")}),
		"proxy_set_header Host $http_host;", "proxy_set_header Host $host;", 1)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	runNginx(t, path, bad, port)
	if c := dialVia(t, base, "name=x", http.Header{"Origin": {base}}); c != nil {
		t.Fatal("with $host the upgrade was accepted; the test no longer shows B1")
	}
}

// runNginx runs nginx in the foreground with conf, a whole nginx.conf,
// until the test ends: a master and its workers, as in production, with
// the pid file, error log and temporary files in a directory of the
// test's.
func runNginx(t *testing.T, path, conf string, port int) {
	t.Helper()
	dir := t.TempDir()
	global := "daemon off;\npid " + filepath.Join(dir, "nginx.pid") + ";\nerror_log " + filepath.Join(dir, "error.log") + " warn;\n"
	if os.Geteuid() == 0 {
		// Workers run as nobody otherwise, and cannot reach dir.
		global += "user root;\n"
	}
	var temps string
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		temps += p + "_temp_path " + filepath.Join(dir, p) + ";\n"
	}
	full := global + strings.Replace(conf, "http {", "http {\naccess_log off;\n"+temps, 1)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(path, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", cf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// SIGTERM: the master stops its workers, then exits.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(timeout):
			cmd.Process.Kill()
			<-done
		}
	})
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

// TestClusterDocNginx checks that the nginx config CLUSTER.md shows is
// nginx.conf without its comments and blank lines, so that the page and
// the file the tests run cannot drift apart.
func TestClusterDocNginx(t *testing.T) {
	doc, err := os.ReadFile("../../CLUSTER.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```nginx\n")
	if !ok {
		t.Fatal("CLUSTER.md has no ```nginx block")
	}
	block, _, _ = strings.Cut(block, "```")
	conf, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := directives(string(conf))
	if got := directives(block); !slices.Equal(got, want) {
		t.Fatalf("CLUSTER.md's nginx block is not nginx.conf without comments:\n%s\n\nnginx.conf:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// directives returns the lines of an nginx config with comments, blank
// lines and indentation left out.
func directives(conf string) []string {
	var out []string
	for line := range strings.SplitSeq(conf, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}
