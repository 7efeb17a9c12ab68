package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lafgo/laf/bench/internal/load"
	"github.com/lafgo/laf/bench/internal/proc"
)

// buildServer builds cmd/server into dir.
func buildServer(dir string) (string, error) {
	bin := filepath.Join(dir, "server")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/lafgo/laf/bench/cmd/server")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the server: %w", err)
	}
	return bin, nil
}

// server is one running contender.
type server struct {
	lib string
	cmd *exec.Cmd
	t   *load.Target
	log *os.File
}

// startServer starts bin for lib with extra arguments; env, if not nil,
// is added to the server's environment.
func startServer(bin, lib, logDir string, env []string, extra ...string) (*server, error) {
	logf, err := os.CreateTemp(logDir, "server-"+lib+"-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"-lib", lib, "-addr", "127.0.0.1:0", "-listeners", "4"}, extra...)...)
	cmd.Stderr = logf
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{lib: lib, cmd: cmd, log: logf}
	line := make(chan string, 1)
	go func() {
		br := bufio.NewReader(out)
		l, _ := br.ReadString('\n')
		line <- l
		io.Copy(logf, br)
	}()
	var l string
	select {
	case l = <-line:
	case <-time.After(20 * time.Second):
	}
	addrs, ok := strings.CutPrefix(strings.TrimSpace(l), "listening ")
	if !ok {
		s.stop()
		return nil, fmt.Errorf("server %s did not start (see %s)", lib, logf.Name())
	}
	t, err := load.NewTarget(strings.Split(addrs, ","))
	if err != nil {
		s.stop()
		return nil, err
	}
	s.t = t
	if _, err := t.WaitConns(0, true, 10*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("server %s: %w", lib, err)
	}
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) sample() proc.Sample {
	if s == nil {
		return proc.Sample{}
	}
	p, err := proc.Read(s.pid())
	if err != nil {
		fmt.Fprintf(os.Stderr, "  reading /proc for %s: %v\n", s.lib, err)
	}
	return p
}

// fetch saves an HTTP resource of the server (a profile) to file.
func (s *server) fetch(path, file string) error {
	c := &http.Client{Timeout: 5 * time.Minute}
	resp, err := c.Get("http://" + s.t.Addrs[0] + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

func (s *server) stop() {
	if s.t != nil {
		s.t.CloseIdle()
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.log.Close()
}
