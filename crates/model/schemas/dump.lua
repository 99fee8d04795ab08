-- Dumps Kong 3.9.1 schemas as `GET /schemas/...` serves them (schema_to_jsonable),
-- by loading Kong's own Lua schema files with stubs for the runtime.
package.path = "/tmp/kong391/?.lua;/tmp/kong391/?/init.lua;" .. package.path

local NULL = setmetatable({}, { __tostring = function() return "null" end })
local function stubfn() return nil end
local stub_mt
stub_mt = { __index = function(t, k) local v = setmetatable({}, stub_mt); rawset(t, k, v); return v end,
            __call = function() return nil end }
local function stub() return setmetatable({}, stub_mt) end

ngx = setmetatable({ null = NULL, log = stubfn, WARN = 1, DEBUG = 2, ERR = 3, INFO = 4, NOTICE = 5,
  re = { match = stubfn, find = stubfn, gsub = stubfn, gmatch = stubfn, sub = stubfn },
  config = { subsystem = "http", prefix = "/tmp", ngx_lua_version = 10026 }, worker = { id = function() return 0 end },
  shared = {}, var = {}, ctx = {}, now = function() return 0 end, time = function() return 0 end,
  sleep = stubfn, timer = { at = stubfn }, get_phase = function() return "init" end,
  md5 = stubfn, encode_base64 = stubfn, decode_base64 = stubfn, escape_uri = function(s) return s end,
  unescape_uri = function(s) return s end, crc32_long = stubfn, hmac_sha1 = stubfn, sha1_bin = stubfn,
  thread = { spawn = stubfn }, socket = { tcp = stubfn }, location = { capture = stubfn },
  req = {}, resp = {}, header = {}, arg = {}, HTTP_OK = 200 }, stub_mt)
kong = setmetatable({ configuration = { router_flavor = "traditional_compatible", role = "traditional", database = "postgres" } }, stub_mt)
table.unpack = table.unpack or unpack
package.preload["table.clone"] = function() return function(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end end
package.preload["table.new"] = function() return function() return {} end end
package.preload["table.clear"] = function() return function(t) for k in pairs(t) do t[k] = nil end end end
package.preload["table.nkeys"] = function() return function(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end end
package.preload["table.isarray"] = function() return function(t) return #t > 0 end end

local Schema = {}
function Schema.define(tbl)
  return setmetatable(tbl, { __call = function(t, arg)
    arg = arg or {}
    for k, v in pairs(t) do if arg[k] == nil then arg[k] = v end end
    return arg
  end })
end
Schema.validators = setmetatable({}, { __index = function() return function() return true end end })
function Schema.each_field(self)
  if getmetatable(self) == stub_mt or getmetatable(self.fields) == stub_mt then return function() end end
  local i = 0
  return function()
    i = i + 1
    local f = self.fields and self.fields[i]
    if f then local k = next(f); return k, f[k] end
  end
end
function Schema.new(def) return def end
package.preload["kong.db.schema"] = function() return Schema end

local real_stubs = {
  ["kong.tools.string"] = { validate_utf8 = function() return true end, strip = function(s) return s end, split = function() return {} end },
  ["kong.tools.uri"] = { normalize = function(s) return s end },
}
for name, m in pairs(real_stubs) do package.preload[name] = function() return m end end

-- Anything that cannot be found or loaded is a stub.
table.insert(package.loaders, function(name)
  return function() return stub() end
end)
local orig_require = require
require = function(name)
  local ok, m = pcall(orig_require, name)
  if ok then return m end
  io.stderr:write("stubbed " .. name .. ": " .. tostring(m):sub(1, 120) .. "\n")
  package.loaded[name] = stub()
  return package.loaded[name]
end

local function is_array(t)
  if getmetatable(t) == stub_mt then return false end
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" then return false end
    n = n + 1
  end
  for i = 1, n do if t[i] == nil then return false end end
  return n > 0
end

local ARRAY_KEYS = { fields = true, entity_checks = true, one_of = true, not_one_of = true, elements_list = true,
  shorthand_fields = true, between = true, mutually_exclusive_subsets = true, match_all = true, match_none = true,
  patterns = true, at_least_one_of = true, only_one_of = true, then_at_least_one_of = true, else_then_at_least_one_of = true,
  field_sources = true, mutually_required = true, mutually_exclusive = true, distinct = true, set1 = true, set2 = true,
  replaced_with = true, path = true }

local encode
local function esc(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local map = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
    return map[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end
encode = function(v, key, parent_type)
  local t = type(v)
  if v == NULL then return "null" end
  if t == "string" then return esc(v) end
  if t == "number" then
    if v ~= v then return '"nan"' end
    if v == math.huge then return '"inf"' end
    if v == -math.huge then return '"-inf"' end
    if v == math.floor(v) and math.abs(v) < 2^53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if t == "boolean" then return tostring(v) end
  if t == "table" then
    if getmetatable(v) == stub_mt then return "null" end
    local empty = next(v) == nil
    if (empty and (ARRAY_KEYS[key] or (key == "default" and (parent_type == "array" or parent_type == "set")))) or is_array(v) then
      local parts = {}
      for i = 1, #v do
        local e = encode(v[i], key, nil)
        if e then parts[#parts + 1] = e end
      end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k, val in pairs(v) do
      if type(k) == "string" and type(val) ~= "function" and k ~= "schema" then keys[#keys + 1] = k end
    end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
      local e = encode(v[k], k, v.type)
      if e then parts[#parts + 1] = esc(k) .. ":" .. e end
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return nil -- functions, userdata
end

local function make_records_required(field)
  if field.required == nil then field.required = true end
  for _, f in Schema.each_field(field) do
    if f.type == "record" then make_records_required(f) end
  end
end

local function entity_json(def, is_subschema)
  for _, f in Schema.each_field(def) do
    if f.type == "record" then make_records_required(f) end
  end
  if is_subschema then def.required = nil end
  return encode({ fields = def.fields, entity_checks = def.entity_checks or {} }, nil, nil)
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text, "\n")
  f:close()
end

local out = arg[1]
local entities = { "services", "routes", "consumers", "plugins", "upstreams", "targets", "certificates", "snis",
  "ca_certificates", "vaults", "key_sets", "keys" }
for _, name in ipairs(entities) do
  local ok, def = pcall(require, "kong.db.schema.entities." .. name)
  if ok and type(def) == "table" and def.fields then
    write(out .. "/" .. name .. ".json", entity_json(def))
  else
    io.stderr:write("FAILED entity " .. name .. ": " .. tostring(def) .. "\n")
  end
end
for _, plugin in ipairs({ "key-auth", "basic-auth", "hmac-auth", "jwt", "acl" }) do
  local ok, daos = pcall(require, "kong.plugins." .. plugin .. ".daos")
  if ok and type(daos) == "table" then
    for _, def in ipairs(daos) do
      if def.name then write(out .. "/" .. def.name .. ".json", entity_json(def)) end
    end
  else
    io.stderr:write("FAILED daos " .. plugin .. ": " .. tostring(daos) .. "\n")
  end
end
local plugins = { "key-auth", "basic-auth", "hmac-auth", "jwt", "acl", "cors", "rate-limiting", "response-ratelimiting",
  "request-transformer", "response-transformer", "ip-restriction", "request-size-limiting", "request-termination",
  "proxy-cache", "correlation-id", "bot-detection", "file-log", "http-log", "tcp-log", "prometheus", "pre-function",
  "post-function" }
for _, plugin in ipairs(plugins) do
  local ok, def = pcall(require, "kong.plugins." .. plugin .. ".schema")
  if ok and type(def) == "table" and def.fields then
    make_records_required(def)
    def.required = nil
    write(out .. "/plugins/" .. plugin .. ".json", encode({ fields = def.fields, entity_checks = def.entity_checks or {} }, nil, nil))
    local hok, handler = pcall(require, "kong.plugins." .. plugin .. ".handler")
    local prio = hok and type(handler) == "table" and rawget(handler, "PRIORITY") or "?"
    print(plugin .. " " .. tostring(prio))
  else
    io.stderr:write("FAILED plugin " .. plugin .. ": " .. tostring(def) .. "\n")
  end
end
