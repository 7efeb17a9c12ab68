package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// series is one line of a panel.
type series struct {
	name  string
	color string
	dash  string
	y     []float64
}

// plotSVG draws the samples as two panels sharing the time axis: memory
// (RSS and Go heap, MiB, with the line fitted to RSS over the second half)
// and counts (goroutines, live sockets). Dashed lines mark half time and
// the stop of the load.
func plotSVG(samples []sample, title string, half, stop time.Duration, tr trend) string {
	const (
		w, h        = 960.0, 640.0
		left, right = 80.0, 30.0
	)
	samples = decimate(samples, 1200)
	xs := make([]float64, len(samples))
	mem := []series{
		{name: "RSS", color: "#1f77b4"},
		{name: "Go heap (HeapAlloc)", color: "#ff7f0e"},
		{name: "held by the Go runtime", color: "#8c564b", dash: "2 2"},
	}
	cnt := []series{
		{name: "goroutines", color: "#2ca02c"},
		{name: "live sockets", color: "#9467bd"},
	}
	for i, s := range samples {
		xs[i] = s.T.Seconds()
		mem[0].y = append(mem[0].y, float64(s.RSS)/(1<<20))
		mem[1].y = append(mem[1].y, float64(s.HeapAlloc)/(1<<20))
		mem[2].y = append(mem[2].y, float64(s.GoHeld)/(1<<20))
		cnt[0].y = append(cnt[0].y, float64(s.Goroutines))
		cnt[1].y = append(cnt[1].y, float64(s.Live))
	}
	xmax := 1.0
	if len(xs) > 0 {
		xmax = max(xs[len(xs)-1], 1)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(title))

	xscale := func(x float64) float64 { return left + (w-left-right)*x/xmax }
	panel := func(top, bottom float64, label string, ss []series, fit bool) {
		ymax := 0.0
		for _, s := range ss {
			for _, y := range s.y {
				ymax = max(ymax, y)
			}
		}
		step := niceStep(ymax / 5)
		ymax = math.Max(step, math.Ceil(ymax*1.1/step)*step)
		yscale := func(y float64) float64 { return bottom - (bottom-top)*y/ymax }
		// The second half, where RSS must be flat.
		if fit && stop > 0 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f2f2f2"/>`+"\n",
				xscale(half.Seconds()), top, xscale(stop.Seconds())-xscale(half.Seconds()), bottom-top)
		}
		for y := 0.0; y <= ymax+step/2; y += step {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, yscale(y), w-right, yscale(y))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yscale(y)+4, fmtTick(y))
		}
		fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (top+bottom)/2, esc(label))
		xstep := niceStep(xmax / 10)
		if xmax >= 120 {
			xstep = 60 * niceStep(xmax/60/10) // whole minutes
		}
		for x := 0.0; x <= xmax+xstep/100; x += xstep {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", xscale(x), top, xscale(x), bottom)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", xscale(x), bottom+16, fmtTime(x))
		}
		for _, m := range []struct {
			at    time.Duration
			label string
			color string
		}{{half, "half", "#888"}, {stop, "shutdown", "#d62728"}} {
			if m.at <= 0 {
				continue
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4 3"/>`+"\n",
				xscale(m.at.Seconds()), top, xscale(m.at.Seconds()), bottom, m.color)
			anchor := "middle"
			if xscale(m.at.Seconds()) > w-right-40 {
				anchor = "end"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s" text-anchor="%s">%s</text>`+"\n", xscale(m.at.Seconds()), top-4, m.color, anchor, m.label)
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#444"/>`+"\n", left, top, w-left-right, bottom-top)
		for _, s := range ss {
			var pts strings.Builder
			for i, y := range s.y {
				fmt.Fprintf(&pts, "%.1f,%.1f ", xscale(xs[i]), yscale(y))
			}
			dash := ""
			if s.dash != "" {
				dash = ` stroke-dasharray="` + s.dash + `"`
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>`+"\n", s.color, dash, strings.TrimSpace(pts.String()))
		}
		if fit && tr.N >= 2 {
			x0, x1 := tr.From.Seconds(), tr.To.Seconds()
			y0 := (tr.Mean + tr.Slope*(x0-tr.MeanT)) / (1 << 20)
			y1 := (tr.Mean + tr.Slope*(x1-tr.MeanT)) / (1 << 20)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="1.5" stroke-dasharray="6 3"/>`+"\n",
				xscale(x0), yscale(y0), xscale(x1), yscale(y1))
		}
		// Legend.
		lx := left + 10
		items := ss
		if fit {
			items = append(append([]series(nil), ss...), series{name: "RSS fit, second half", color: "#000", dash: "6 3"})
		}
		for _, s := range items {
			dash := ""
			if s.dash != "" {
				dash = ` stroke-dasharray="` + s.dash + `"`
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, top+14, lx+22, top+14, s.color, dash)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+27, top+18, esc(s.name))
			lx += 40 + 7*float64(len(s.name))
		}
	}
	panel(50, 330, "MiB", mem, true)
	panel(380, 600, "count", cnt, false)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">time since the load began</text>`+"\n", (left+w-right)/2, h-8)
	b.WriteString("</svg>\n")
	return b.String()
}

// decimate keeps at most n samples, evenly spaced.
func decimate(s []sample, n int) []sample {
	if len(s) <= n {
		return s
	}
	out := make([]sample, 0, n)
	for i := range n {
		out = append(out, s[i*(len(s)-1)/(n-1)])
	}
	return out
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(y float64) string {
	if y == math.Trunc(y) {
		return fmt.Sprintf("%.0f", y)
	}
	return fmt.Sprintf("%g", math.Round(y*100)/100)
}

func fmtTime(sec float64) string {
	if sec >= 120 || sec > 0 && math.Mod(sec, 60) == 0 && sec >= 60 {
		return fmt.Sprintf("%gm", math.Round(sec/60*10)/10)
	}
	return fmt.Sprintf("%gs", math.Round(sec))
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
