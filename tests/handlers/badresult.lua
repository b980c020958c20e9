-- badresult: returns values that JSON cannot hold.
return function(job, ctx)
  local k = job.payload.kind
  if k == "function" then return { f = print } end
  if k == "cyclic" then local t = {}; t.self = t; return t end
  if k == "nan" then return { n = 0 / 0 } end
  if k == "userdata" then return { out = io.stdout } end
  if k == "binary" then return { s = "\255\254" } end
  if k == "boolkey" then return { [true] = 1 } end
  if k == "null" then return { a = cjson.null, list = { 1, 2, 3 }, empty = {} } end
  if k == "big" then return { big = 9007199254740993, money = 19.99, neg = -1 } end
  if k == "string" then return "hello" end
  return nil
end
