// Package wallet is the reader's side of Hashwall: an encrypted file holding
// certificates, the user's key and the spending state; the choice of tokens
// for a payment with a journal that survives crashes; and a paying
// http.RoundTripper.
package wallet

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashwall/hashwall/internal/atomicfile"
	"github.com/hashwall/hashwall/payword"
)

// fileState is what the wallet file holds, encrypted.
type fileState struct {
	Version int           `json:"version"`
	Agent   string        `json:"agent"` // the agent's base URL
	User    string        `json:"user"`
	UserKey []byte        `json:"user_key"` // Ed25519 seed; the agent never sees it
	Certs   []*heldCert   `json:"certs"`
	Pending []*pendingPay `json:"pending"`
	Grants  []*heldGrant  `json:"grants"`
	History []*Event      `json:"history"`
	Limits  Limits        `json:"limits"`
	Seq     uint64        `json:"seq"` // last payment id handed out
	// AgentKeys are the bank's public keys (kid → Ed25519 key), pinned
	// the first time they are needed; they verify its origins documents.
	AgentKeys map[string]payword.Bytes `json:"agent_keys,omitempty"`

	// Checkpoint is the last journal op folded into this file.
	Checkpoint uint64 `json:"checkpoint"`
}

// heldCert is one certificate bundle and how much of it is spent.
type heldCert struct {
	Raw       payword.Bytes        `json:"cert"`
	K         payword.Bytes        `json:"k"`
	Anchors   []payword.Token      `json:"anchors,omitempty"` // a[g] for every segment, derived from K
	Segs      map[uint32]*segState `json:"segs"`              // segments in use
	NextFresh uint32               `json:"next_fresh"`        // segments below this are in Segs
	Revoked   bool                 `json:"revoked,omitempty"`
}

// segState is a segment bound to one vendor. Spent counts tokens handed out,
// accepted or pending; it only goes back when a vendor definitively refuses
// the latest payment from it.
type segState struct {
	Vendor  string        `json:"vendor"`
	Binding payword.Bytes `json:"bind,omitempty"`
	Spent   uint32        `json:"spent"`
	// Anchor and Path prove the segment in every payment from it.
	Anchor *payword.Token  `json:"anchor,omitempty"`
	Path   []payword.Token `json:"path,omitempty"`
}

// pendingPay is a payment journaled before it was sent and not yet settled.
// Until it is, it is retried as is, at the same vendor, before anything else
// is spent: the vendor answers a repeated payment with the same grant.
type pendingPay struct {
	ID      uint64    `json:"id"`
	Serial  string    `json:"serial"`
	Segment uint32    `json:"seg"`
	Index   uint32    `json:"i"`
	Amount  uint32    `json:"p"`
	Vendor  string    `json:"vendor"`
	Product string    `json:"product"`
	URL     string    `json:"url"`
	Header  string    `json:"header"`
	Created time.Time `json:"created"`
}

// heldGrant is an access grant a vendor returned: sent as a Bearer token
// on later requests under Path at Host until it expires.
type heldGrant struct {
	Host    string    `json:"host"`
	Path    string    `json:"path"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// Event is a line of the history: a certificate bought, a payment and its
// outcome, or a payment the wallet refused.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // bought, paid, refused, refused-origin, spent-without-grant
	Vendor  string    `json:"vendor,omitempty"`
	Product string    `json:"product,omitempty"`
	URL     string    `json:"url,omitempty"`
	Amount  int       `json:"amount"`
	Note    string    `json:"note,omitempty"`
}

// Limits are the reader's caps on automatic payments.
type Limits struct {
	PerRequest uint32 `json:"per_request"` // tokens one request may cost
	PerSiteDay uint32 `json:"per_site_day"`
}

// defaultLimits apply to new wallets.
var defaultLimits = Limits{PerRequest: 10, PerSiteDay: 200}

const maxHistory = 1000

// Wallet is an open, locked wallet file. Its methods are safe for concurrent
// use within the process; the file lock keeps other processes out.
type Wallet struct {
	path string
	lock *os.File
	seal *sealer
	j    *journal

	mu     sync.Mutex
	st     fileState
	broken error // set when memory and file may disagree
	now    func() time.Time
	trees  map[string]*payword.Tree // per serial, built on first use

	origins originBook // the bank's origins documents, cached (origins.go)
}

// Create makes a new wallet file at path with a fresh user key.
func Create(path string, password []byte, agent, user string) (*Wallet, error) {
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err == nil {
		lock.Close()
		return nil, ErrExists
	}
	seal, err := newSealer(password, defaultKDF)
	if err != nil {
		lock.Close()
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		lock.Close()
		return nil, err
	}
	j, err := openJournal(path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	w := newWallet(path, lock, seal, j, fileState{Version: 1, Agent: agent, User: user, UserKey: priv.Seed(), Limits: defaultLimits})
	if err := w.save(); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// Open unlocks the wallet at path. A wrong password or a damaged file is an
// error and leaves the file untouched.
func Open(path string, password []byte) (*Wallet, error) {
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	w, err := openLocked(path, lock, password)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return w, nil
}

func openLocked(path string, lock *os.File, password []byte) (*Wallet, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	seal, plain, err := unseal(data, password)
	if err != nil {
		return nil, err
	}
	j, err := openJournal(path)
	if err != nil {
		return nil, err
	}
	st, err := load(plain, seal, j)
	if err != nil {
		j.f.Close()
		return nil, err
	}
	return newWallet(path, lock, seal, j, st), nil
}

// load decodes the main file's state and replays the journal onto it.
func load(plain []byte, seal *sealer, j *journal) (fileState, error) {
	st, err := decodeState(plain)
	if err != nil {
		return fileState{}, err
	}
	return st, j.replay(seal, &st)
}

func decodeState(plain []byte) (fileState, error) {
	var st fileState
	if err := json.Unmarshal(plain, &st); err != nil || st.Version != 1 || len(st.UserKey) != ed25519.SeedSize {
		return fileState{}, ErrNotWallet
	}
	for _, c := range st.Certs {
		if c.Segs == nil {
			c.Segs = map[uint32]*segState{}
		}
	}
	return st, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxFileSize {
		return nil, ErrNotWallet
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, ErrNotWallet
	}
	return data, nil
}

func newWallet(path string, lock *os.File, seal *sealer, j *journal, st fileState) *Wallet {
	return &Wallet{path: path, lock: lock, seal: seal, j: j, st: st, now: time.Now, trees: map[string]*payword.Tree{}}
}

// Close folds the journal into the wallet file and releases the lock.
func (w *Wallet) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if w.j.slot > 0 && w.broken == nil {
		err = w.save()
	}
	w.j.f.Close()
	w.lock.Close()
	return err
}

// logOp writes one payment step to the journal, then applies it; a
// reservation is durable before logOp returns (see journal.go). When the
// journal is full the step is folded into a checkpoint instead.
func (w *Wallet) logOp(o *op) error {
	if w.broken != nil {
		return w.broken
	}
	ok, err := w.j.write(w.seal, o, o.Reserve != nil)
	if err != nil {
		return err
	}
	if err := w.st.apply(o); err != nil {
		w.fail(err)
		return err
	}
	if !ok {
		w.j.seq++
		if err := w.save(); err != nil {
			w.fail(err)
			return err
		}
	}
	return nil
}

// fail puts memory back in step with the files after a failed change.
func (w *Wallet) fail(err error) {
	if rerr := w.reload(); rerr != nil {
		w.broken = fmt.Errorf("the wallet could not be saved nor read back; reopen it: %w", rerr)
	}
}

// save writes a checkpoint: the whole state, atomically replacing the file;
// the journal then starts over. Callers hold w.mu (or own the wallet
// exclusively).
func (w *Wallet) save() error {
	w.st.Checkpoint = w.j.seq
	plain, err := json.Marshal(&w.st)
	if err != nil {
		return err
	}
	data, err := w.seal.seal(plain)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(w.path, data, 0o600); err != nil {
		return fmt.Errorf("saving the wallet: %w", err)
	}
	w.j.slot = 0
	return nil
}

// update applies f to the state and saves a checkpoint. If f fails or the
// save does, the state is read back from the files, so memory never runs
// ahead of disk.
func (w *Wallet) update(f func(st *fileState) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.updateLocked(f)
}

func (w *Wallet) updateLocked(f func(st *fileState) error) error {
	if w.broken != nil {
		return w.broken
	}
	err := f(&w.st)
	if err == nil {
		if err = w.save(); err == nil {
			return nil
		}
	}
	w.fail(err)
	return err
}

// reload reads the state back from the file with the key already derived.
func (w *Wallet) reload() error {
	data, err := readBounded(w.path)
	if err != nil {
		return err
	}
	plain, err := w.seal.open(data)
	if err != nil {
		return err
	}
	st, err := load(plain, w.seal, w.j)
	if err != nil {
		return err
	}
	w.st = st
	return nil
}

// User is the username of the wallet's account at its bank.
func (w *Wallet) User() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st.User
}

// History returns the history, oldest first (at most the last 1000 events).
func (w *Wallet) History() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Event, len(w.st.History))
	for i, e := range w.st.History {
		out[i] = *e
	}
	return out
}

func (w *Wallet) userKey() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(w.st.UserKey) }

// publicKey is the user's key, which the agent writes into certificates.
func (w *Wallet) publicKey() ed25519.PublicKey {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.userKey().Public().(ed25519.PublicKey)
}

func (st *fileState) record(e *Event) {
	st.History = append(st.History, e)
	if n := len(st.History) - maxHistory; n > 0 {
		st.History = append([]*Event(nil), st.History[n:]...)
	}
}

var errNoSuchPayment = errors.New("no such pending payment")

// Export writes a copy of the encrypted wallet to dst, atomically, after
// folding the journal in.
func (w *Wallet) Export(dst string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.save(); err != nil {
		return err
	}
	data, err := readBounded(w.path)
	if err != nil {
		return err
	}
	return atomicfile.Write(dst, data, 0o600)
}

// Import installs the exported wallet src at dst after checking that
// password opens it. dst must not exist.
func Import(src, dst string, password []byte) error {
	data, err := readBounded(src)
	if err != nil {
		return err
	}
	if _, _, err := unseal(data, password); err != nil {
		return err
	}
	lock, err := lockFile(dst)
	if err != nil {
		return err
	}
	defer lock.Close()
	if _, err := os.Stat(dst); err == nil {
		return ErrExists
	}
	return atomicfile.Write(dst, data, 0o600)
}
