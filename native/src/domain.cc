// Domain: thin async wrappers over virDomain* calls.
#include "common.h"

namespace lv {

// Runs on the pool right after a lookup/define. Both reads are local (the
// client caches uuid and name in the handle), so they cost no round trip.
bool Describe(virDomainPtr dom, DomainInfo& out) {
  if (dom == nullptr) return false;
  char uuid[VIR_UUID_STRING_BUFLEN] = "";
  virDomainGetUUIDString(dom, uuid);
  const char* name = virDomainGetName(dom);
  out.dom = dom;
  out.uuid = uuid;
  out.name = name ? name : "";
  return true;
}

Napi::Function Domain::Init(Napi::Env env) {
  Napi::Function cls = DefineClass(
      env, "Domain",
      {InstanceMethod<&Domain::WithFlags<virDomainCreateWithFlags>>("createWithFlags"),
       InstanceMethod<&Domain::Simple<virDomainResume>>("resume"),
       InstanceMethod<&Domain::Simple<virDomainSuspend>>("suspend"),
       InstanceMethod<&Domain::Simple<virDomainDestroy>>("destroy"),
       InstanceMethod<&Domain::WithFlags<virDomainDestroyFlags>>("destroyFlags"),
       InstanceMethod<&Domain::WithFlags<virDomainUndefineFlags>>("undefineFlags"),
       InstanceMethod<&Domain::GetState>("getState"),
       InstanceMethod<&Domain::GetXMLDesc>("getXMLDesc"),
       InstanceMethod<&Domain::IsActive>("isActive")});
  Data(env).domainClass = Napi::Persistent(cls);
  return cls;
}

Napi::Value Domain::NewInstance(Napi::Env env, DomainInfo& info) {
  return Data(env).domainClass.New({Napi::External<DomainInfo>::New(env, &info)});
}

// Only NewInstance constructs these; the handle moves into the object.
Domain::Domain(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Domain>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsExternal())
    throw Napi::TypeError::New(env, "Domain objects come from Connection methods");
  DomainInfo* in = info[0].As<Napi::External<DomainInfo>>().Data();
  dom_ = in->dom;
  in->dom = nullptr;
  // Read-only own properties: cheap to read and visible in console.log.
  Value().DefineProperties(
      {Napi::PropertyDescriptor::Value("uuid", Napi::String::New(env, in->uuid),
                                       napi_enumerable),
       Napi::PropertyDescriptor::Value("name", Napi::String::New(env, in->name),
                                       napi_enumerable)});
}

// Freeing may drop the connection's last reference (a blocking RPC).
Domain::~Domain() {
  if (dom_ != nullptr) ReleaseLater([dom = dom_] { virDomainFree(dom); });
}

// Runs work(dom) on the pool, holding a reference for the call's duration.
template <typename T>
Napi::Value Domain::Run(Napi::Env env, std::function<bool(virDomainPtr, T&)> work,
                        typename Call<T>::Done done) {
  virDomainPtr dom = dom_;
  virDomainRef(dom);
  return Call<T>::Start(
      env, [dom, work](T& out) { return work(dom, out); }, std::move(done),
      [dom] { virDomainFree(dom); });
}

// The many calls that return 0 / -1 and resolve with undefined.
template <int (*F)(virDomainPtr)>
Napi::Value Domain::Simple(const Napi::CallbackInfo& info) {
  return Run<None>(
      info.Env(), [](virDomainPtr d, None&) { return F(d) >= 0; }, Undefined);
}

template <int (*F)(virDomainPtr, unsigned int)>
Napi::Value Domain::WithFlags(const Napi::CallbackInfo& info) {
  unsigned int flags = FlagsArg(info, 0);
  return Run<None>(
      info.Env(), [flags](virDomainPtr d, None&) { return F(d, flags) >= 0; },
      Undefined);
}

struct State {
  int state = 0;
  int reason = 0;
};

Napi::Value Domain::GetState(const Napi::CallbackInfo& info) {
  return Run<State>(
      info.Env(),
      [](virDomainPtr d, State& s) {
        return virDomainGetState(d, &s.state, &s.reason, 0) == 0;
      },
      [](Napi::Env env, State& s) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("state", s.state);
        out.Set("reason", s.reason);
        return out;
      });
}

Napi::Value Domain::GetXMLDesc(const Napi::CallbackInfo& info) {
  unsigned int flags = FlagsArg(info, 0);
  return Run<std::string>(
      info.Env(),
      [flags](virDomainPtr d, std::string& xml) {
        char* s = virDomainGetXMLDesc(d, flags);
        if (s == nullptr) return false;
        xml = s;
        free(s);
        return true;
      },
      [](Napi::Env env, std::string& xml) -> Napi::Value {
        return Napi::String::New(env, xml);
      });
}

Napi::Value Domain::IsActive(const Napi::CallbackInfo& info) {
  return Run<int>(
      info.Env(),
      [](virDomainPtr d, int& active) {
        active = virDomainIsActive(d);
        return active >= 0;
      },
      [](Napi::Env env, int& active) -> Napi::Value {
        return Napi::Boolean::New(env, active == 1);
      });
}

}  // namespace lv
