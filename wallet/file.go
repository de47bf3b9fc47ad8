package wallet

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// The wallet file is the paper's "certificate stored in cryptographic form":
//
//	"HWW" ‖ 0x01 ‖ salt[16] ‖ u32 argon2 time ‖ u32 memory KiB ‖ u8 threads ‖ nonce[24] ‖ ciphertext
//
// The key is argon2id(password, salt); the ciphertext is XChaCha20-Poly1305
// over the JSON state with the header as associated data, so a changed
// parameter is as detectable as a changed byte of the state.

const (
	fileMagic   = "HWW\x01"
	saltLen     = 16
	headerLen   = len(fileMagic) + saltLen + 4 + 4 + 1 + chacha20poly1305.NonceSizeX
	maxFileSize = 64 << 20
)

// kdfParams are the argon2id parameters. 64 MiB, one pass and two lanes keep
// unlocking well under half a second on a laptop while making each password
// guess expensive.
type kdfParams struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// defaultKDF is used for new wallets.
var defaultKDF = kdfParams{Time: 1, Memory: 64 << 10, Threads: 2}

// Errors a reader sees. Neither ever leads to the file being overwritten.
var (
	ErrWrongPassword = errors.New("wrong password, or the wallet file was changed")
	ErrNotWallet     = errors.New("not a Hashwall wallet file (truncated or damaged)")
	ErrLocked        = errors.New("the wallet is in use by another hashwall-wallet process")
	ErrExists        = errors.New("a wallet file already exists there")
)

// sealer holds the cipher keyed by an open wallet's password, so saving does
// not pay the KDF again.
type sealer struct {
	salt [saltLen]byte
	kdf  kdfParams
	aead cipher.AEAD
}

func newSealer(password []byte, kdf kdfParams) (*sealer, error) {
	s := &sealer{kdf: kdf}
	if _, err := rand.Read(s.salt[:]); err != nil {
		return nil, err
	}
	return s, s.derive(password)
}

func (s *sealer) derive(password []byte) error {
	var err error
	s.aead, err = chacha20poly1305.NewX(argon2.IDKey(password, s.salt[:], s.kdf.Time, s.kdf.Memory, s.kdf.Threads, chacha20poly1305.KeySize))
	return err
}

func (s *sealer) header(nonce []byte) []byte {
	h := make([]byte, 0, headerLen)
	h = append(h, fileMagic...)
	h = append(h, s.salt[:]...)
	h = binary.BigEndian.AppendUint32(h, s.kdf.Time)
	h = binary.BigEndian.AppendUint32(h, s.kdf.Memory)
	h = append(h, s.kdf.Threads)
	return append(h, nonce...)
}

func (s *sealer) seal(plain []byte) ([]byte, error) {
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	h := s.header(nonce)
	return s.aead.Seal(h, nonce, plain, h), nil
}

// open decrypts a wallet file sealed with this sealer's key.
func (s *sealer) open(data []byte) ([]byte, error) {
	if len(data) < headerLen+chacha20poly1305.Overhead || string(data[:len(fileMagic)]) != fileMagic {
		return nil, ErrNotWallet
	}
	plain, err := s.aead.Open(nil, data[headerLen-chacha20poly1305.NonceSizeX:headerLen], data[headerLen:], data[:headerLen])
	if err != nil {
		return nil, ErrWrongPassword
	}
	return plain, nil
}

// unseal decrypts a wallet file with password. The KDF parameters come from
// the file, within bounds, so a hostile file cannot make us allocate or spin
// without limit.
func unseal(data, password []byte) (*sealer, []byte, error) {
	if len(data) < headerLen+chacha20poly1305.Overhead || string(data[:len(fileMagic)]) != fileMagic {
		return nil, nil, ErrNotWallet
	}
	s := &sealer{}
	p := data[len(fileMagic):]
	copy(s.salt[:], p)
	p = p[saltLen:]
	s.kdf = kdfParams{Time: binary.BigEndian.Uint32(p), Memory: binary.BigEndian.Uint32(p[4:]), Threads: p[8]}
	if s.kdf.Time < 1 || s.kdf.Time > 16 || s.kdf.Memory < 8<<10 || s.kdf.Memory > 1<<20 || s.kdf.Threads < 1 {
		return nil, nil, ErrNotWallet
	}
	if err := s.derive(password); err != nil {
		return nil, nil, err
	}
	plain, err := s.open(data)
	return s, plain, err
}

// lockFile takes an exclusive advisory lock on path+".lock" for the life of
// the process's use of the wallet. The kernel drops it if the process dies.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("locking the wallet: %w", err)
	}
	return f, nil
}
