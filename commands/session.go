package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"xenmanager/backend"
)

// Outcome is how a command ended, ordered by severity so that a batch's exit
// status is the worst outcome of its commands.
type Outcome int

// Outcomes, least severe first.
const (
	OK          Outcome = iota // every command succeeded
	Failed                     // a command ran and failed
	ParseFailed                // a command could not be parsed
	Denied                     // authentication or permission refused
)

// ExitStatus is the SSH exit status for an outcome (CLI.md): 0 success, 1 a
// command failed, 2 a command could not be parsed, 3 authentication or
// permission.
func (o Outcome) ExitStatus() int { return int(o) }

// Exec is what a handler gets: the parsed command and the session's context.
type Exec struct {
	Cmd      *Command
	Backend  *backend.Manager
	Actor    backend.Actor
	Registry *Registry
	Session  *Session
	// Settings is the handler's copy of the session's settings; the session
	// adopts it when the handler finishes in time, so that a handler still
	// running after a timeout never races with the session.
	Settings *Settings
	// Terminal is the session's terminal when it is interactive, else nil.
	Terminal Terminal
}

// Ref returns the command's instance as a backend reference.
func (x *Exec) Ref() backend.Ref { return refOf(x.Cmd.Instance) }

// TargetRef returns the on/to/from clause's instance, or the zero Ref.
func (x *Exec) TargetRef() backend.Ref {
	if x.Cmd.Target == nil {
		return backend.Ref{}
	}
	return refOf(&x.Cmd.Target.Instance)
}

func refOf(i *Instance) backend.Ref {
	if i == nil {
		return backend.Ref{}
	}
	if i.ByID {
		return backend.Ref{ID: i.Value}
	}
	return backend.Ref{Name: i.Value}
}

// Str returns the value of attribute name, or def when absent.
func (x *Exec) Str(name, def string) string {
	if v, ok := x.Cmd.Attrs[name]; ok {
		return v
	}
	return def
}

// Int returns the integer value of attribute name (already validated by the
// parser), or def when absent.
func (x *Exec) Int(name string, def int64) int64 {
	v, ok := x.Cmd.Attrs[name]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return def
	}
	return n
}

// Settings are a session's "set" values.
type Settings struct {
	OutputMode     string // a Mode constant
	CommandMode    string // Synchronous (Asynchronous needs jobs)
	CommandTimeout time.Duration
	EndLineChars   string // LF, CRLF or CR
	Alphabetize    bool
	StopOnError    bool
}

// DefaultCommandTimeout bounds one command unless "set commandTimeout=" says
// otherwise.
const DefaultCommandTimeout = time.Hour

// Options describe the session being opened.
type Options struct {
	// Interactive sessions (a PTY) default to Table output and to the output
	// mode the user chose last time; exec and batch sessions always start in
	// Verbose, so that scripts get what they parse whatever the user chose
	// interactively.
	Interactive bool
	Log         *slog.Logger
	// Terminal, in interactive sessions, lets top and console take the
	// screen and keyboard.
	Terminal Terminal
	// Progress, in interactive sessions, draws a running job's progress in
	// place ("" clears it); it never reaches exec or batch output.
	Progress func(line string)
}

// Session runs the commands of one SSH session and prints their output.
type Session struct {
	reg      *Registry
	backend  *backend.Manager
	actor    backend.Actor
	out      io.Writer
	log      *slog.Logger
	now      func() time.Time
	started  time.Time
	opts     Options
	exited   bool
	settings Settings
}

// settingOutputMode is the key of the remembered output mode.
const settingOutputMode = "outputMode"

// NewSession starts a command session for actor writing to out.
func NewSession(ctx context.Context, reg *Registry, b *backend.Manager, actor backend.Actor, out io.Writer, opts Options) *Session {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Session{reg: reg, backend: b, actor: actor, out: out, log: opts.Log, now: time.Now, opts: opts,
		settings: Settings{OutputMode: ModeVerbose, CommandMode: "Synchronous", CommandTimeout: DefaultCommandTimeout,
			EndLineChars: "LF"}}
	s.started = s.now()
	if opts.Interactive {
		s.settings.OutputMode = ModeTable
		if m, ok := b.UserSetting(ctx, actor.User, settingOutputMode); ok {
			s.settings.OutputMode = m
		}
	}
	return s
}

// Exited reports whether the session has ended: exit, or a failure with
// stopOnError=Yes.
func (s *Session) Exited() bool { return s.exited }

// Settings returns the session's current settings.
func (s *Session) Settings() Settings { return s.settings }

func (s *Session) format() Format {
	eol := map[string]string{"LF": "\n", "CRLF": "\r\n", "CR": "\r"}[s.settings.EndLineChars]
	return Format{Mode: s.settings.OutputMode, Alphabetize: s.settings.Alphabetize, EOL: eol}
}

// RejectLine reports a line that is refused whole (say, too long to read)
// without running any of it.
func (s *Session) RejectLine(shown, msg string) Outcome {
	rep := &Report{Command: maskSecrets(shown, s.reg), Time: s.now(), Code: CodeSyntax, Msg: msg}
	s.log.Info("line refused", "user", s.actor.User, "remote", s.actor.Remote, "error", msg)
	s.write(rep)
	if s.settings.StopOnError {
		s.exited = true
	}
	return ParseFailed
}

// RunLine runs every command of a line (';'-joined) in order and returns the
// worst outcome. A piece that does not parse is reported and the others
// still run (unless stopOnError=Yes).
func (s *Session) RunLine(ctx context.Context, line string) Outcome {
	worst := OK
	secretSeen := false
	for _, p := range s.reg.ParseLine(line) {
		if s.exited {
			break
		}
		// A piece after one that held a password may be the rest of that
		// password (password=ab;cd): if it fails to parse, show none of it.
		if p.Err != nil && secretSeen {
			p.Text, p.Err = "****", &ParseError{Code: p.Err.Code, Msg: redactedMessage(p.Err.Code)}
		}
		secretSeen = secretSeen || MentionsSecret(p.Text)
		o := s.run(ctx, p)
		if o > worst {
			worst = o
		}
		if o != OK && s.settings.StopOnError {
			s.exited = true
		}
	}
	return worst
}

func (s *Session) run(ctx context.Context, p Parsed) Outcome {
	shown := maskSecrets(p.Text, s.reg)
	if p.Err != nil && MentionsSecret(p.Text) {
		// The error could quote part of a password: say what is wrong in
		// general terms and echo only the first word.
		shown = firstWord(p.Text) + " ..."
		p.Err = &ParseError{Code: p.Err.Code, Msg: redactedMessage(p.Err.Code) + s.acceptedHint(p.Text)}
	}
	rep := &Report{Command: shown, Time: s.now()}
	if p.Err != nil {
		rep.Code, rep.Msg = p.Err.Code, p.Err.Msg
		s.log.Info("command refused", "user", s.actor.User, "remote", s.actor.Remote, "command", shown, "error", p.Err.Error())
		s.write(rep)
		return ParseFailed
	}
	cmd := p.Cmd
	// The user's role may have changed, or the user been deleted, since the
	// session logged in: every command runs with the role the user has now.
	if s.backend != nil {
		cur, err := s.backend.CurrentActor(ctx, s.actor)
		if err != nil {
			rep.Code, rep.Msg = describeError(err)
			s.write(rep)
			s.exited = true
			return Denied
		}
		s.actor = cur
	}
	if cmd.Help {
		rep.Result = &Result{Text: helpFor(s.reg, cmd)}
		s.write(rep)
		return OK
	}
	res, err, finished := s.execute(ctx, cmd)
	rep.Time = s.now()
	rep.Result = res
	if !finished {
		rep.Result = nil
		rep.Code = CodeTimeout
		rep.Msg = fmt.Sprintf("the command did not finish within commandTimeout=%d seconds; it goes on in the background (see its objects with show)",
			int(s.settings.CommandTimeout/time.Second))
		if ctx.Err() != nil {
			rep.Msg = "interrupted; the command goes on in the background (list Job shows it)"
		}
		s.log.Warn("command still running after commandTimeout", "user", s.actor.User, "command", shown)
		s.write(rep)
		return Failed
	}
	if err != nil && backend.KindOf(err) == backend.KindStillRunning && s.settings.CommandMode == "Asynchronous" {
		// Asynchronous mode: the job started; its id is the answer.
		rep.Result = &Result{Props: []Prop{{"Job Id", backend.JobIDOf(err)}}}
		err = nil
	}
	if err != nil {
		rep.Code, rep.Msg = describeError(err)
		var me *multiError
		if errors.As(err, &me) {
			rep.Msg = me.message()
		}
		s.log.Info("command failed", "user", s.actor.User, "remote", s.actor.Remote, "command", shown, "code", rep.Code, "error", err.Error())
		s.write(rep)
		if rep.Code == CodePermission {
			return Denied
		}
		return Failed
	}
	s.log.Info("command succeeded", "user", s.actor.User, "remote", s.actor.Remote, "command", shown)
	if res != nil && res.Exit {
		s.exited = true
		return OK
	}
	s.write(rep)
	return OK
}

// execute runs cmd's handler on behalf of the session's user and waits for
// it at most commandTimeout. Changes run as backend jobs, detached from the
// session: a client that goes away or stops waiting never leaves one
// half-done. finished is false when the handler did not return in time
// (it was not a job, or did not honour its context).
func (s *Session) execute(ctx context.Context, cmd *Command) (res *Result, err error, finished bool) {
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	settings := s.settings
	x := &Exec{Cmd: cmd, Backend: s.backend, Actor: s.actor, Registry: s.reg, Session: s, Settings: &settings, Terminal: s.opts.Terminal}
	hctx := backend.WithActor(ctx, s.actor)
	if settings.CommandMode == "Asynchronous" {
		hctx = backend.WithAsync(hctx)
	}
	var jobsMu sync.Mutex // guards jobs: the observer runs in the handler's goroutines
	var jobs []string
	if s.opts.Progress != nil {
		hctx = backend.WithJobObserver(hctx, func(id string) {
			jobsMu.Lock()
			jobs = append(jobs, id)
			jobsMu.Unlock()
		})
	}
	timeout := settings.CommandTimeout // read before the handler may change its copy
	hctx, cancel := context.WithTimeout(hctx, timeout)
	defer cancel()
	go func() {
		r, e := cmd.Spec.Run(hctx, x)
		done <- outcome{r, e}
	}()
	// Handlers end soon after their context; the grace covers one that
	// does not, so that the session never hangs on it.
	grace := time.NewTimer(timeout + 5*time.Second)
	defer grace.Stop()
	var tick <-chan time.Time
	if s.opts.Progress != nil {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		tick = t.C
		defer s.opts.Progress("")
	}
	for {
		select {
		case o := <-done:
			s.settings = *x.Settings
			return o.res, o.err, true
		case <-tick:
			jobsMu.Lock()
			watched := append([]string(nil), jobs...)
			jobsMu.Unlock()
			s.drawProgress(ctx, watched)
		case <-grace.C:
			return nil, nil, false
		case <-ctx.Done():
			// Interrupted (Ctrl-C) or the client left: the handler ends soon
			// after its context, naming the job that goes on; wait for that.
			select {
			case o := <-done:
				s.settings = *x.Settings
				return o.res, o.err, true
			case <-time.After(2 * time.Second):
				return nil, nil, false
			}
		}
	}
}

// drawProgress shows the jobs being waited for as a bar: one job's own
// progress, or for several (a multi-object action) how many have ended.
func (s *Session) drawProgress(ctx context.Context, ids []string) {
	ctx = backend.WithActor(ctx, s.actor)
	switch len(ids) {
	case 0:
		return
	case 1:
		j, err := s.backend.Job(ctx, ids[0])
		if err != nil {
			return
		}
		label := j.Summary
		if j.Message != "" {
			label += ": " + j.Message
		}
		s.opts.Progress(bar(j.Progress, label))
	default:
		ended, err := s.backend.JobsEnded(ctx, ids)
		if err != nil {
			return
		}
		s.opts.Progress(bar(ended*100/len(ids), fmt.Sprintf("%d of %d jobs done", ended, len(ids))))
	}
}

func bar(pct int, label string) string {
	const width = 30
	pct = min(max(pct, 0), 100)
	filled := pct * width / 100
	return fmt.Sprintf("[%s%s] %3d%% %s", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), pct, label)
}

func (s *Session) write(rep *Report) {
	result := StatusSuccess
	if rep.Failed() {
		result = string(rep.Code)
	}
	if s.backend != nil {
		s.backend.Audit(context.Background(), s.actor, rep.Command, result)
	}
	if err := writeReport(s.out, s.format(), rep); err != nil {
		s.log.Debug("session output lost", "err", err)
	}
}

// MentionsSecret reports whether a command may hold a password, including
// misspelt attribute names (pasword=, passwd=): such commands are never
// quoted word for word in errors or logs, nor kept in history.
func MentionsSecret(text string) bool {
	l := strings.ToLower(text)
	if strings.Contains(l, "pass") || strings.Contains(l, "pwd") || strings.Contains(l, "secret") {
		return true
	}
	for _, w := range strings.Fields(text) {
		key, value, ok := strings.Cut(strings.Trim(w, `"'`), "=")
		if ok && editDistance(strings.ToLower(strings.Trim(key, `"'`)), "password") <= 2 {
			return true
		}
		if _, ok := redactURL(strings.Trim(value, `"'`)); ok {
			return true
		}
	}
	return false
}

// acceptedHint names the attributes the command takes, when its first words
// name a command, so that a redacted error still helps.
func (s *Session) acceptedHint(text string) string {
	f := strings.Fields(text)
	if len(f) == 0 {
		return ""
	}
	v, ok := s.reg.Verb(f[0])
	if !ok {
		return ""
	}
	spec := v.Specs[0]
	if v.Typed() {
		if len(f) < 2 {
			return ""
		}
		if spec, ok = v.Spec(f[1]); !ok {
			return ""
		}
	}
	return "; usage: " + spec.Usage()
}

func firstWord(text string) string {
	if f := strings.Fields(text); len(f) > 0 && utf8.ValidString(f[0]) && !strings.ContainsAny(f[0], "=\"'") {
		return f[0]
	}
	return "****"
}

// redactedMessage describes a parse error without quoting any word.
func redactedMessage(code Code) string {
	for _, c := range Codes {
		if c.Code == code {
			return c.Meaning + " (the command holds a password, so its words are not repeated; see help)"
		}
	}
	return "the command could not be parsed (the command holds a password, so its words are not repeated)"
}

// maskSecrets returns the command with the values of secret attributes
// (and of any attribute called password, even in a line that did not parse)
// replaced by ****, for echoing and logging.
func maskSecrets(text string, reg *Registry) string {
	toks, err := lex(text)
	if err != nil {
		// Not lexable (say, an open quote): keep only the first word.
		if f := strings.Fields(text); len(f) > 0 {
			return f[0] + " ..."
		}
		return ""
	}
	var spec *Spec
	if len(toks) > 0 {
		if v, ok := reg.Verb(toks[0].text); ok {
			if !v.Typed() {
				spec = v.Specs[0]
			} else if len(toks) > 1 {
				spec, _ = v.Spec(toks[1].text)
			}
		}
	}
	var b strings.Builder
	last := 0
	for _, t := range toks {
		if !t.hasEq {
			continue
		}
		secret := strings.EqualFold(t.key, "password")
		if spec != nil {
			if a := spec.attr(t.key); a != nil && a.Kind == AttrSecret {
				secret = true
			}
		}
		if secret {
			b.WriteString(text[last:t.pos])
			b.WriteString(t.key + "=****")
			last = t.pos + len(t.raw)
		} else if redacted, ok := redactURL(t.value); ok {
			b.WriteString(text[last:t.pos])
			b.WriteString(t.key + "=" + redacted)
			last = t.pos + len(t.raw)
		}
	}
	b.WriteString(text[last:])
	return b.String()
}

// redactURL returns a URL value with the password of its user part
// replaced (http://user:xxxxx@host/...), and whether it had one. It reads
// the value by hand, so that a URL too broken to parse still loses it.
func redactURL(value string) (string, bool) {
	scheme, rest, ok := strings.Cut(value, "://")
	if !ok {
		return "", false
	}
	authority, path := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return "", false
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return "", false
	}
	return scheme + "://" + user + ":xxxxx" + authority[at:] + path, true
}
