import socket,threading,time,os,subprocess
def ask(line):
    s=socket.socket(socket.AF_UNIX); s.connect('\0review4-e'); s.sendall(line.encode()); 
    out=b''
    while True:
        d=s.recv(65536)
        if not d: break
        out+=d
    return out.split(b'\n')[0]
ev=threading.Event(); tid=[0]
def f():
    tid[0]=threading.get_native_id(); ev.wait()
t=threading.Thread(target=f); t.start(); time.sleep(0.2)
print('me',os.getpid(),'thread',tid[0])
print('thread:',ask(f'portserver/1 allocate pid={tid[0]}\n'))
c=subprocess.Popen(['sleep','30'])
print('child:',c.pid,ask(f'portserver/1 allocate pid={c.pid}\n'))
print('nonexistent:',ask(f'portserver/1 allocate pid=4000\n'))
c.kill(); ev.set()
