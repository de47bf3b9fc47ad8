package web

// Chart is a bar chart drawn as inline SVG by the "chart" helper
// (templates/forms.html): server side, no script, no inline style.
type Chart struct {
	Title         string
	Width, Height int
	Bars          []Bar
	Max           string // the top of the scale, as a label
	First, Last   string // the first and last bars' labels
}

// Bar is one bar: its box and its tooltip.
type Bar struct {
	X, Y, W, H int
	Label      string // e.g. "2026-11-24: 12 tokens"
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 600, 160
	chartTop       = 16 // room for the scale's label
	chartBottom    = 20 // room for the dates
)

// BarChart draws values (at most a few hundred: one bar each) with their
// labels; label names the bar's value for its tooltip.
func BarChart(title string, names []string, values []int64, label func(int64) string) Chart {
	c := Chart{Title: title, Width: chartW, Height: chartH}
	if len(values) == 0 || len(values) != len(names) {
		return c
	}
	var top int64 = 1
	for _, v := range values {
		top = max(top, v)
	}
	c.Max, c.First, c.Last = label(top), names[0], names[len(names)-1]
	slot := chartW / len(values)
	plot := chartH - chartTop - chartBottom
	for i, v := range values {
		v = max(v, 0)
		h := int(float64(v) / float64(top) * float64(plot))
		if v > 0 && h == 0 {
			h = 1 // a small day stays visible
		}
		c.Bars = append(c.Bars, Bar{X: i*slot + 1, Y: chartTop + plot - h, W: max(slot-2, 1), H: h,
			Label: names[i] + ": " + label(v)})
	}
	return c
}

// Ranking is a horizontal bar chart drawn as inline SVG by the "ranking"
// helper: one row per name, its bar as long as its value against the
// largest, and the value written after it.
type Ranking struct {
	Title         string
	Width, Height int
	Rows          []RankRow
}

// RankRow is one row of a Ranking.
type RankRow struct {
	Y, W  int    // the row's top and its bar's width
	Name  string // shown left of the bar
	Value string // shown right of the bar
}

// Ranking geometry, in SVG user units: names take the left part.
const (
	rankRowH  = 22
	rankNameW = 240
	rankBarW  = chartW - rankNameW - 90 // room for the value
)

// RankChart draws values (a page of them: one row each) with their names;
// label writes a value.
func RankChart(title string, names []string, values []int64, label func(int64) string) Ranking {
	r := Ranking{Title: title, Width: chartW, Height: max(1, len(values)) * rankRowH}
	if len(values) != len(names) {
		return r
	}
	var top int64 = 1
	for _, v := range values {
		top = max(top, v)
	}
	for i, v := range values {
		w := int(float64(max(v, 0)) / float64(top) * rankBarW)
		if v > 0 && w == 0 {
			w = 1
		}
		name := names[i]
		if len(name) > 36 { // a long path (ASCII) keeps its end, the part that differs
			name = "…" + name[len(name)-35:]
		}
		r.Rows = append(r.Rows, RankRow{Y: i * rankRowH, W: w, Name: name, Value: label(v)})
	}
	return r
}
