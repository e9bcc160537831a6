from . import secret_box
from . import key_rotation
