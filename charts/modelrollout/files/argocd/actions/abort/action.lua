-- Roll back now, and stay rolled back while spec.abort is true.
obj.spec.abort = true
return obj
