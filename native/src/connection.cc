// Connection: thin async wrappers over virConnect* calls.
#include "common.h"

namespace lv {

namespace {
// Registers the connection's one lifecycle callback and one close callback.
// Best effort: drivers without them simply never deliver to listeners.
Registrations Register(virConnectPtr conn) {
  Registrations regs;
  auto lifecycle = std::make_shared<Fanout>();
  void* ref = Fanout::NewRef(lifecycle);
  regs.lifecycleId = virConnectDomainEventRegisterAny(
      conn, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
      VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle), ref, Fanout::FreeRef);
  if (regs.lifecycleId >= 0)
    regs.lifecycle = lifecycle;
  else
    Fanout::FreeRef(ref);  // not taken by libvirt

  auto closed = std::make_shared<Fanout>();
  ref = Fanout::NewRef(closed);
  if (virConnectRegisterCloseCallback(conn, OnConnectionClosed, ref,
                                      Fanout::FreeRef) == 0)
    regs.closed = closed;
  else
    Fanout::FreeRef(ref);
  virResetLastError();
  return regs;
}

// Drops our registrations (they hold connection references), then our own
// reference. Pool or releaser thread only: this may do RPCs. Errors are
// ignored: a dead connection can only be released, not repaired.
void Shutdown(virConnectPtr conn, const Registrations& regs) {
  if (regs.lifecycleId >= 0)
    virConnectDomainEventDeregisterAny(conn, regs.lifecycleId);
  if (regs.closed) virConnectUnregisterCloseCallback(conn, OnConnectionClosed);
  virConnectClose(conn);
  virResetLastError();
}

// What open() hands to the constructor.
struct Opened {
  virConnectPtr conn = nullptr;
  Registrations regs;
};
}  // namespace

Napi::Function Connection::Init(Napi::Env env) {
  Napi::Function cls = DefineClass(
      env, "Connection",
      {StaticMethod<&Connection::Open>("open"),
       InstanceMethod<&Connection::Close>("close"),
       InstanceMethod<&Connection::IsAlive>("isAlive"),
       InstanceMethod<&Connection::DomainFrom<virDomainLookupByUUIDString>>(
           "lookupDomainByUUID"),
       InstanceMethod<&Connection::DomainFrom<virDomainLookupByName>>(
           "lookupDomainByName"),
       InstanceMethod<&Connection::DomainFrom<virDomainDefineXML>>(
           "defineDomainXML"),
       InstanceMethod<&Connection::ListAllDomains>("listAllDomains"),
       InstanceMethod<&Connection::GetLibVersion>("getLibVersion"),
       InstanceMethod<&Connection::OnLifecycleEvent>("onLifecycleEvent"),
       InstanceMethod<&Connection::OffLifecycleEvent>("offLifecycleEvent"),
       InstanceMethod<&Connection::OnClose>("onClose"),
       InstanceMethod<&Connection::OffClose>("offClose")});
  Data(env).connectionClass = Napi::Persistent(cls);
  return cls;
}

// Only Connection.open() constructs these, passing what it opened.
Connection::Connection(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<Connection>(info) {
  if (!info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "use Connection.open(uri)");
  Opened* opened = info[0].As<Napi::External<Opened>>().Data();
  conn_ = opened->conn;
  regs_ = std::move(opened->regs);
  opened->conn = nullptr;
}

Connection::~Connection() {
  if (conn_ == nullptr) return;
  // Garbage-collected without close(): finish it off the JS thread.
  ReleaseLater([conn = conn_, regs = regs_] { Shutdown(conn, regs); });
}

// Runs work(conn) on the pool. The extra reference keeps the C object valid
// even if close() or garbage collection happens while the call is running.
template <typename T>
Napi::Value Connection::Run(Napi::Env env,
                            std::function<bool(virConnectPtr, T&)> work,
                            typename Call<T>::Done done) {
  if (conn_ == nullptr) return Rejected(env, ClosedError());
  virConnectPtr conn = conn_;
  virConnectRef(conn);
  return Call<T>::Start(
      env, [conn, work](T& out) { return work(conn, out); }, std::move(done),
      [conn] { virConnectClose(conn); });
}

Napi::Value Connection::Open(const Napi::CallbackInfo& info) {
  std::string uri = StringArg(info, 0, "uri");
  return Call<Opened>::Start(
      info.Env(),
      [uri](Opened& out) {
        out.conn = virConnectOpen(uri.c_str());
        if (out.conn == nullptr) return false;
        // Detect a dead daemon within ~3 s (ping every 1 s, 2 unanswered).
        // Best effort: local drivers such as test:// report NO_SUPPORT.
        if (virConnectSetKeepAlive(out.conn, 1, 2) < 0) virResetLastError();
        out.regs = Register(out.conn);
        return true;
      },
      [](Napi::Env env, Opened& out) -> Napi::Value {
        return Data(env).connectionClass.New(
            {Napi::External<Opened>::New(env, &out)});
      });
}

// Idempotent. Our registrations go first: they hold connection references.
Napi::Value Connection::Close(const Napi::CallbackInfo& info) {
  virConnectPtr conn = conn_;
  conn_ = nullptr;  // later calls reject at once
  if (conn == nullptr)
    return Call<None>::Start(info.Env(), [](None&) { return true; }, Undefined);
  Registrations regs = std::move(regs_);
  regs_ = Registrations();
  return Call<None>::Start(
      info.Env(),
      [conn, regs](None&) {
        Shutdown(conn, regs);
        return true;
      },
      Undefined);
}

// Synchronous on purpose: virConnectIsAlive only checks local socket state.
Napi::Value Connection::IsAlive(const Napi::CallbackInfo& info) {
  bool alive = conn_ != nullptr && virConnectIsAlive(conn_) == 1;
  return Napi::Boolean::New(info.Env(), alive);
}

// Lookups and define: one string in, one domain out.
template <virDomainPtr (*F)(virConnectPtr, const char*)>
Napi::Value Connection::DomainFrom(const Napi::CallbackInfo& info) {
  std::string arg = StringArg(info, 0, "argument");
  return Run<DomainInfo>(
      info.Env(),
      [arg](virConnectPtr c, DomainInfo& out) {
        return Describe(F(c, arg.c_str()), out);
      },
      [](Napi::Env env, DomainInfo& d) { return Domain::NewInstance(env, d); });
}

Napi::Value Connection::ListAllDomains(const Napi::CallbackInfo& info) {
  unsigned int flags = FlagsArg(info, 0);
  return Run<std::vector<DomainInfo>>(
      info.Env(),
      [flags](virConnectPtr c, std::vector<DomainInfo>& out) {
        virDomainPtr* doms = nullptr;
        int n = virConnectListAllDomains(c, &doms, flags);
        if (n < 0) return false;
        out.resize(n);
        for (int i = 0; i < n; i++) Describe(doms[i], out[i]);
        free(doms);  // the array only; each domain is now owned by out
        return true;
      },
      [](Napi::Env env, std::vector<DomainInfo>& doms) -> Napi::Value {
        Napi::Array arr = Napi::Array::New(env, doms.size());
        for (size_t i = 0; i < doms.size(); i++)
          arr.Set(i, Domain::NewInstance(env, doms[i]));
        return arr;
      });
}

Napi::Value Connection::GetLibVersion(const Napi::CallbackInfo& info) {
  return Run<unsigned long>(
      info.Env(),
      [](virConnectPtr c, unsigned long& ver) {
        return virConnectGetLibVersion(c, &ver) == 0;
      },
      [](Napi::Env env, unsigned long& ver) -> Napi::Value {
        return Napi::Number::New(env, static_cast<double>(ver));
      });
}

// Listeners are synchronous and local: the libvirt registrations were made
// at open, so a listener added here sees every later event. Any number of
// listeners may coexist; each call returns an id for the matching off*().
Napi::Value Connection::AddListener(const Napi::CallbackInfo& info,
                                    const std::shared_ptr<Fanout>& fanout,
                                    const char* name) {
  Napi::Env env = info.Env();
  Napi::Function cb = FunctionArg(info, 0);
  if (conn_ == nullptr) throw Napi::Error(env, MakeError(env, ClosedError()));
  if (!fanout) {
    ErrorInfo e;
    e.code = VIR_ERR_NO_SUPPORT;
    e.message = std::string(name) + " is not supported by this connection";
    throw Napi::Error(env, MakeError(env, e));
  }
  return Napi::Number::New(env, fanout->Add(Sink::Create(env, cb, name)));
}

Napi::Value Connection::RemoveListener(const Napi::CallbackInfo& info,
                                       const std::shared_ptr<Fanout>& fanout) {
  if (!info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "id must be a number");
  int id = info[0].As<Napi::Number>().Int32Value();
  return Napi::Boolean::New(info.Env(), fanout && fanout->Remove(id));
}

Napi::Value Connection::OnLifecycleEvent(const Napi::CallbackInfo& info) {
  return AddListener(info, regs_.lifecycle, "lifecycle events");
}

Napi::Value Connection::OffLifecycleEvent(const Napi::CallbackInfo& info) {
  return RemoveListener(info, regs_.lifecycle);
}

// Fires once, when the connection breaks (not for close()). A listener added
// after that is called right away with the same reason.
Napi::Value Connection::OnClose(const Napi::CallbackInfo& info) {
  return AddListener(info, regs_.closed, "close callbacks");
}

Napi::Value Connection::OffClose(const Napi::CallbackInfo& info) {
  return RemoveListener(info, regs_.closed);
}

}  // namespace lv
