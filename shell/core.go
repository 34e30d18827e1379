package shell

import (
	"context"
	"io"

	gossh "golang.org/x/crypto/ssh"

	"xenmanager/backend"
	"xenmanager/commands"
)

// Core is what the SSH front asks of the manager core itself: who logs in,
// their settings and history, and object names for completion. It is an
// interface so that shell does not depend on *backend.Manager (which
// satisfies it): everything else reaches the core through the command
// sessions Config.NewSession makes.
type Core interface {
	Authenticate(ctx context.Context, user, password string) (backend.Actor, error)
	AuthenticateKey(ctx context.Context, user string, key gossh.PublicKey) (backend.Actor, error)
	UserSetting(ctx context.Context, user, key string) (string, bool)
	History(ctx context.Context, user string) []string
	AppendHistory(ctx context.Context, user, line string)
	ObjectNames(ctx context.Context, typ, prefix string, limit int, states []string) []string
}

// NewSessionFunc makes the command session of one SSH session, running
// command lines of reg for actor and writing to out: cmd/xenmanager makes
// it commands.NewSession on the manager, which shell need not know.
type NewSessionFunc func(ctx context.Context, reg *commands.Registry, actor backend.Actor, out io.Writer, opts commands.Options) *commands.Session

// objectNames returns the completion callback for object names: what actor
// may see, and for a VM action only the VMs in a state the action accepts.
func objectNames(ctx context.Context, core Core, actor backend.Actor) commands.ObjectNames {
	return func(q commands.NameQuery) []string {
		return core.ObjectNames(backend.WithActor(ctx, actor), q.Type, q.Prefix, q.Limit, q.States)
	}
}
