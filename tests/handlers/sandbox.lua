-- sandbox: reports which dangerous functions are reachable.
return function(job, ctx)
  return {
    execute = os.execute ~= nil,
    remove = os.remove ~= nil,
    popen = io.popen ~= nil,
    loadlib = package.loadlib ~= nil,
    sethook = debug.sethook ~= nil,
    traceback = debug.traceback ~= nil,
    cjson_global = type(cjson) == "table",
    cjson_require = require("cjson") == cjson,
    cjson_safe = type(require("cjson.safe").decode) == "function",
    binary = (load(string.dump(function() return 1 end)) ~= nil),
    text = load("return 1 + 1")(),
    gc = pcall(setmetatable, {}, { __gc = function() end }),
    encoded = cjson.encode({ a = 1 }),
    clock = type(os.clock()) == "number",
  }
end
