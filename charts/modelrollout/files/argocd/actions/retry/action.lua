-- Start again after a rollback (or a pause by the inconclusive policy): raise spec.retry, clear abort.
obj.spec.retry = (obj.spec.retry or 0) + 1
obj.spec.abort = false
return obj
