package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/redisurl"
)

// fail is a refusal: the JSON error body of agentapi.Error with its status.
func fail(status int, code agentapi.Code, msg string) *agentapi.Error {
	return &agentapi.Error{Status: status, Code: code, Message: msg}
}

// retryLater is e (a shared 429) with the Retry-After of this refusal.
func retryLater(e *agentapi.Error, after time.Duration) *agentapi.Error {
	c := *e
	c.RetryAfter = after
	return &c
}

var (
	errUnauthorized = fail(http.StatusUnauthorized, agentapi.CodeUnauthorized, "missing or invalid credentials")
	errInternal     = fail(http.StatusInternalServerError, agentapi.CodeInternal, "internal error")
	errUnavailable  = fail(http.StatusServiceUnavailable, agentapi.CodeStoreUnavailable, "the agent's store is unavailable")
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Default body limit of the small JSON requests.
const maxBody = 16 << 10

// readBody reads at most limit bytes, or fails with 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, fail(http.StatusRequestEntityTooLarge, agentapi.CodeTooLarge, "request body too large")
	case err != nil:
		return nil, fail(http.StatusBadRequest, agentapi.CodeBadRequest, "cannot read request body")
	}
	return body, nil
}

// decodeJSON decodes exactly one JSON object into v, refusing unknown
// fields and trailing data so that typos fail loudly.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r, maxBody)
	if err != nil {
		return err
	}
	return unmarshalStrict(body, v)
}

func unmarshalStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return fail(http.StatusBadRequest, agentapi.CodeMalformed, "request body is not JSON of the expected shape")
	}
	return nil
}

// handler adapts a function returning an error to http.Handler, so every
// failure path ends in one JSON error.
type handler func(w http.ResponseWriter, r *http.Request) error

func (a *Agent) wrap(route string, h handler) http.Handler {
	obs := a.metrics.latency.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		err := h(w, r)
		if err != nil {
			e, ok := errors.AsType[*agentapi.Error](err)
			if !ok {
				a.log.Error("request failed", zap.String("route", route), zap.Error(err))
				e = errInternal
				if isRedisDown(err) {
					e = errUnavailable
				}
			}
			if e.RetryAfter > 0 { // whole seconds, rounded up
				w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
			}
			writeJSON(w, e.Status, e)
		}
		obs.Observe(time.Since(start).Seconds())
	})
}

// isRedisDown tells a store outage (503: retry later) from a bug (500).
func isRedisDown(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redisurl.ErrNotReplicated) ||
		strings.HasPrefix(err.Error(), "LOADING")
}
